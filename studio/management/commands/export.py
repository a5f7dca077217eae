"""Export a creator's clips to one ZIP (the MP4s, their stills, recipe.csv and recipe.json):
the same archive the library's Export button streams (studio/exports.py)."""

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio import exports, library
from studio.models import Clip

INVALID = 2


class Command(BaseCommand):
    help = "Export a creator's clips, with their recipes, to a ZIP file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="the ZIP file to write")
        parser.add_argument("--user", required=True, help="the creator's username")
        parser.add_argument("--favourites", action="store_true", help="only starred clips")
        parser.add_argument(
            "--since", type=date.fromisoformat, help="only clips made on or after DATE (YYYY-MM-DD)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"There is no user called {opts['user']!r}.", returncode=INVALID)
        filters = library.Filters(
            show=library.Show.READY, favourites=opts["favourites"], since=opts["since"]
        )
        jobs = library.filtered(user, filters)
        clips = exports.clips_for_export(Clip.objects.filter(job__in=jobs))
        if not clips:
            raise CommandError("No clips match; nothing was written.", returncode=1)
        with open(opts["out"], "wb") as out:
            for piece in exports.stream(clips):
                out.write(piece)
        plural = "s" if len(clips) != 1 else ""
        self.stdout.write(f"Wrote {len(clips)} clip{plural} to {opts['out']}")
