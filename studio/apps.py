from django.apps import AppConfig
from django.db.models.signals import post_migrate


class StudioConfig(AppConfig):
    name = "studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from studio import pricing

        # Each provider's seeded prices, added where missing (never changed) after migrate.
        post_migrate.connect(pricing.seed_missing_prices, sender=self)
        # Providers are checked when a worker starts (and hourly, on q2's schedule).
        post_spawn.connect(_check_providers_soon, dispatch_uid="studio-check-providers")


def _check_providers_soon(**kwargs: object) -> None:
    from django_q.conf import Conf
    from django_q.tasks import async_task

    # q2's sync mode (tests) runs each task in a "worker" of its own, which sends this
    # signal again: only a real cluster's workers ask for a check.
    if not Conf.SYNC:
        async_task("studio.tasks.check_providers")
