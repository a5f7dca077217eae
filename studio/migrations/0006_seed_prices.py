"""Each existing job's own price.

This migration first seeded the price table too; the seed data now lives with each provider
(studio/providers/<name>/prices.py) and missing rows are added after every migrate
(studio/pricing.py), so a new provider's prices arrive without a migration of their own.
"""

from decimal import Decimal

from django.db import migrations


def seed(apps, schema_editor):
    Job = apps.get_model("studio", "Job")
    for job in Job.objects.exclude(estimated_cost=0).iterator():
        job.price_per_second = (job.estimated_cost / job.duration).quantize(Decimal("0.0001"))
        job.save(update_fields=["price_per_second"])


class Migration(migrations.Migration):
    dependencies = [("studio", "0005_prices_grants_batches")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
