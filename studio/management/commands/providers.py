"""Provider health from the command line: `manage.py providers check`."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio import health
from studio.providers.registry import LABELS, label

FAILED = 1


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


class Command(BaseCommand):
    help = (
        "Check each configured provider with one cheap documented call (does the key work, "
        "is the model served), record the result and mark failing providers unavailable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        check = commands.add_parser("check", help="check the configured providers")
        check.add_argument(
            "names", nargs="*", metavar="PROVIDER", help="only these (default: all configured)"
        )

    def handle(self, *args: Any, action: str, names: list[str], **options: Any) -> None:
        unknown = [name for name in names if name not in LABELS]
        if unknown:
            raise CommandError(
                f"There is no provider called {unknown[0]!r}; choose from {', '.join(LABELS)}.",
                returncode=2,
            )
        rows = health.check(names or None)
        if not rows:
            self.stdout.write("No provider is configured here: there is nothing to check.")
            return
        table = [("provider", "key OK", "model OK", "price source", "latency", "says")]
        for row in rows:
            result = row.result
            table.append(
                (
                    label(row.provider),
                    _yes_no(result.key_ok) if result else "?",
                    _yes_no(result.model_ok) if result else "?",
                    row.price_source,
                    f"{row.latency_ms} ms",
                    row.message or ("ok" if row.ok else ""),
                )
            )
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
        for line in table:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
            self.stdout.write("  ".join([*cells, line[-1]]).rstrip())
        failed = [label(row.provider) for row in rows if not row.ok]
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}.", returncode=FAILED)
