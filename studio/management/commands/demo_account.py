from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo creator account and print its login."

    def handle(self, *args: Any, **options: Any) -> None:
        username = settings.STUDIO_DEMO_USERNAME
        password = settings.STUDIO_DEMO_PASSWORD
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.is_active = True
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(f"{verb} the demo account. Sign in as {username} / {password}")
