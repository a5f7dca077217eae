"""The still retention: django-q2's scheduler purges, every day, the uploaded stills no job
uses (images.purge_unused_stills, after STUDIO_STILL_RETENTION_DAYS)."""

from django.db import migrations

NAME = "purge-stills"


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "studio.tasks.purge_stills", "schedule_type": "D", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("studio", "0020_still_last_uploaded"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(add_schedule, remove_schedule)]
