"""The quota races (submits, frees and hand-overs of running slots, and the e-mail sent once)
again on PostgreSQL: the same tests, run by a second pytest whose DATABASE_URL is a
throwaway PostgreSQL server (or DATABASE_URL's, when that is one)."""

import os
import subprocess
import sys
from pathlib import Path

RACES = [
    "tests/test_quotas.py::test_fifty_concurrent_submits_against_room_for_ten_accept_exactly_ten",
    "tests/test_quotas.py::test_concurrent_submits_start_at_most_the_running_jobs_limit",
    "tests/test_queue.py::test_concurrent_frees_admit_exactly_as_many_as_the_limit_allows",
    "tests/test_queue.py::test_concurrent_frees_and_cancels_never_admit_a_cancelled_job",
    "tests/test_queue.py::test_concurrent_follower_sweeps_admit_each_job_once",
    "tests/test_notifications.py::test_the_same_task_run_twice_at_once_sends_one_email",
]


def test_the_quota_races_hold_on_postgresql(postgres_url):
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "STUDIO_TEST_DATABASE_NAME": "test_studio_races",
    }
    env.pop("PYTEST_ADDOPTS", None)  # a -q there would hide the header that names the database
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *RACES],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "database: postgresql" in output, output
    for race in RACES:
        assert f"{race} PASSED" in output, output
