"""Serve fal.ai, the Gemini API, AI/ML API and Oxen.ai on loopback: every provider, offline."""

from django.core.management.base import BaseCommand, CommandError

from studio.emulator import KINDS, STAGES, Emulator


class Command(BaseCommand):
    help = (
        "Run the provider emulator: all four hosted-provider protocols on one port, with "
        "real MP4s, queue positions, and failures on demand ([fail:KIND] in a prompt)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--latency",
            type=float,
            default=20.0,
            help="seconds each clip takes, queue wait included (default 20)",
        )
        parser.add_argument(
            "--fail",
            action="append",
            default=[],
            metavar="KIND[@STAGE]",
            help=f"fail every job: {', '.join(KINDS)}; stages {', '.join(STAGES)} (repeatable)",
        )
        parser.add_argument(
            "--fail-times",
            type=int,
            default=1,
            help="how often a transient failure repeats per job before it recovers (0 = always)",
        )
        parser.add_argument(
            "--hang", type=float, default=60.0, help="seconds a `timeout` failure hangs"
        )
        parser.add_argument(
            "--retry-after", type=int, default=7, help="Retry-After of a `rate_limit` failure"
        )

    def handle(self, *args, host, port, latency, fail, fail_times, hang, retry_after, **options):
        try:
            emulator = Emulator(
                latency=latency,
                fail=fail,
                fail_times=fail_times,
                hang_seconds=hang,
                retry_after=retry_after,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        origin = f"http://{host}:{port}"
        self.stdout.write(f"Provider emulator on {origin} (Ctrl-C to stop). Point Studio at it:")
        for name, value in emulator.settings(origin).items():
            self.stdout.write(f"  {name}={value}")
        self.stdout.write(
            "  and FAL_KEY, GEMINI_API_KEY, AIMLAPI_KEY, OXEN_API_KEY set to any non-empty value.\n"
            'Keys "invalid" and "no-credit" are refused. Put [fail:KIND] or [fail:KIND@STAGE] '
            "in a prompt to fail one job."
        )
        try:
            emulator.serve_forever(host, port)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
