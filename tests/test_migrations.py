from django.core.management import call_command


def test_models_and_migrations_agree(db):
    # Exits with status 1 (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_follower_backstop_is_scheduled(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="follow-jobs")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "studio.tasks.follow_jobs", Schedule.MINUTES, 1,
    )  # fmt: skip
