import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOAD = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"


def load_settings(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    clean.update(env, DJANGO_SETTINGS_MODULE="studio.settings")
    return subprocess.run(
        [sys.executable, "-c", LOAD], env=clean, cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "env",
    [{}, {"SECRET_KEY": "short"}, {"SECRET_KEY": "django-insecure-" + "x" * 40}],
)
def test_production_refuses_to_start_without_a_real_secret_key(env):
    run = load_settings(**env)
    assert run.returncode != 0
    assert "Set SECRET_KEY to a random string of at least 32 characters" in run.stderr


def test_production_starts_with_a_real_secret_key():
    run = load_settings(SECRET_KEY="k" * 50)
    assert (run.returncode, run.stdout.strip()) == (0, "False")


def test_debug_may_run_without_a_secret_key():
    assert load_settings(DEBUG="true").stdout.strip() == "True"


def test_a_malformed_boolean_is_named():
    run = load_settings(SECRET_KEY="k" * 50, DEBUG="maybe")
    assert "DEBUG must be true or false, not 'maybe'." in run.stderr


def q2_settings(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    clean.update(env, DJANGO_SETTINGS_MODULE="studio.settings", SECRET_KEY="k" * 50)
    code = (
        "import django; django.setup(); from django.conf import settings; from studio import jobs;"
        "q = settings.Q_CLUSTER; print(q['timeout'], q['retry'], jobs.step_lease_seconds())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True
    )


def test_q_timeout_shortens_the_task_timeout_and_the_step_leases_with_it():
    assert q2_settings().stdout.split() == ["120", "180", "120"]
    assert q2_settings(Q_TIMEOUT="20").stdout.split() == ["20", "180", "20"]


@pytest.mark.parametrize("value", ["0", "180", "600"])
def test_q_timeout_must_stay_below_the_retry(value):
    run = q2_settings(Q_TIMEOUT=value)
    assert run.returncode != 0
    assert f"Q_TIMEOUT must be more than 0 and less than 180 seconds, not {value}." in run.stderr


def email_settings(**env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG") and not k.startswith(("EMAIL_", "DEFAULT_FROM"))
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="studio.settings", SECRET_KEY="k" * 50)
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "from studio import redaction;"
        "print(s.EMAIL_BACKEND.rsplit('.', 2)[1], s.EMAIL_HOST or '-', s.EMAIL_PORT,"
        " s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.EMAIL_TIMEOUT, s.DEFAULT_FROM_EMAIL,"
        " redaction.scrub('password ' + (s.EMAIL_HOST_PASSWORD or '-')))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True
    )


def test_email_goes_to_the_console_unless_an_smtp_server_is_set():
    assert email_settings().stdout.split() == [
        "console", "-", "587", "True", "False", "10", "Studio", "<studio@localhost>", "password",
        "-",
    ]  # fmt: skip
    smtp = email_settings(
        EMAIL_HOST="smtp.example.com", EMAIL_PORT="465", EMAIL_USE_SSL="true",
        EMAIL_HOST_PASSWORD="mail-secret-value", DEFAULT_FROM_EMAIL="clips@example.com",
    )  # fmt: skip
    assert smtp.stdout.split() == [
        "smtp", "smtp.example.com", "465", "False", "True", "10", "clips@example.com",
        "password", "[redacted]",
    ]  # fmt: skip


def test_email_over_both_tls_and_ssl_is_refused():
    run = email_settings(EMAIL_HOST="smtp.example.com", EMAIL_USE_TLS="true", EMAIL_USE_SSL="true")
    assert run.returncode != 0
    assert "Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both." in run.stderr


def check_deploy(tmp_path, **env):
    """`manage.py check --deploy --fail-level WARNING` with production settings: HTTPS, a
    real secret key, DEBUG off, the site's own host."""
    import secrets

    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    clean.update(
        DJANGO_SETTINGS_MODULE="studio.settings", HTTPS="true",
        SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="studio.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}", **env,
    )  # fmt: skip
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=clean, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip


def test_the_deploy_check_passes_with_production_settings(tmp_path):
    run = check_deploy(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "System check identified no issues" in run.stdout


@pytest.mark.parametrize(
    ("env", "warning"),
    [
        ({"HSTS_INCLUDE_SUBDOMAINS": "false"}, "security.W005"),
        ({"HSTS_PRELOAD": "false"}, "security.W021"),
    ],
)
def test_hsts_subdomains_and_preload_are_settings(tmp_path, env, warning):
    run = check_deploy(tmp_path, **env)
    assert run.returncode == 1
    assert warning in run.stderr


def test_hsts_preload_asks_browsers_for_a_year():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    clean.update(DJANGO_SETTINGS_MODULE="studio.settings", SECRET_KEY="k" * 50)
    for env, expected in (
        ({"HTTPS": "true"}, "31536000 True True"),
        ({"HTTPS": "true", "HSTS_PRELOAD": "false"}, "2592000 True False"),
        ({}, "0 False False"),
    ):
        run = subprocess.run(
            [sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT,
            capture_output=True, text=True,
        )  # fmt: skip
        assert run.stdout.strip() == expected, (env, run.stderr)
