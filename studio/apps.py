from django.apps import AppConfig
from django.db.models.signals import post_migrate


class StudioConfig(AppConfig):
    name = "studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from studio import pricing

        # Each provider's seeded prices, added where missing (never changed) after migrate.
        post_migrate.connect(pricing.seed_missing_prices, sender=self)
