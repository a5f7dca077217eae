"""Studio's one settings module: every deploy-specific value comes from the environment.

The README's "Settings" table lists each variable. Production (DEBUG off) refuses to start
without a real SECRET_KEY.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from studio.environment import SECRET_SETTINGS, env, env_bool, env_int, env_list
from studio.providers.registry import provider_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


DEBUG = env_bool("DEBUG")

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "django-insecure-debug-only-key-never-used-with-debug-off"
if len(SECRET_KEY) < 32 or (not DEBUG and SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured(
        "Set SECRET_KEY to a random string of at least 32 characters (DEBUG is off). "
        'One way: python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Behind HTTPS (a proxy that sets X-Forwarded-Proto), cookies must be secure and HSTS on:
# for this host's subdomains too, and marked for the browsers' preload lists, which take
# only a max-age of a year (a month without preload).
HTTPS = env_bool("HTTPS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS and env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = HTTPS and env_bool("HSTS_PRELOAD", True)
SECURE_HSTS_SECONDS = (365 if SECURE_HSTS_PRELOAD else 30) * 24 * 60 * 60 if HTTPS else 0
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_q",
    "template_partials",
    "csp",
    "axes",
    "studio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a request's body (CSRF does): a body over the cap is refused unread.
    "studio.web.uploads.RequestSizeLimit",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (django-csp) on every page: scripts, styles, images, media and
# requests from Studio itself only, none inline (no template has any; htmx is told not to add
# its indicator style), and no framing by any site. Media responses carry their own
# `sandbox` policy (studio/web/media.py), which this leaves alone.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "media-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# SQLite by default, in WAL mode with BEGIN IMMEDIATE so concurrent writers queue on the
# busy timeout instead of failing with "database is locked" (see shared/facts.md).
# Connections are kept for a minute, SQLite's too: django-q2 closes "old" connections before
# every broker call and every task, and with CONN_MAX_AGE 0 that reopened SQLite (and ran
# the PRAGMAs) several times per task (README: The job engine).
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'studio.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# A host cut off mid-transaction would keep its row locks until TCP gives up on it (hours),
# stalling every other host; Studio never leaves a transaction idle (none spans a provider
# call), so PostgreSQL ends such a session after this long (README: Running at scale). 0: never.
STUDIO_DB_IDLE_TRANSACTION_SECONDS = env_int("STUDIO_DB_IDLE_TRANSACTION_SECONDS", 10)
if (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and STUDIO_DB_IDLE_TRANSACTION_SECONDS
):
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c idle_in_transaction_session_timeout={STUDIO_DB_IDLE_TRANSACTION_SECONDS}s"
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sign-in throttling (django-axes): five failures for one account from one address lock
# that pair out for 15 minutes (the lock runs from the fifth failure; trying meanwhile does
# not extend it); a success starts the count again. The lockout is Studio's (or the
# admin's) own sign-in page with the reason (studio/web/signin.py); admins unlock under
# Axes, Access attempts. The address is REMOTE_ADDR: behind a proxy, the proxy's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "studio.web.signin.locked_out"
AXES_VERBOSE = False
# The address a lock is for: the connection's, or behind STUDIO_TRUSTED_PROXIES reverse
# proxies the one they saw (studio/web/signin.py client_address).
AXES_CLIENT_IP_CALLABLE = "studio.web.signin.client_address"
STUDIO_TRUSTED_PROXIES = env_int("STUDIO_TRUSTED_PROXIES", 0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "create"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT") or VAR_DIR / "static")
# Creators' files are never in a web-served folder: they are served by owner-checked views.
MEDIA_ROOT = Path(env("MEDIA_ROOT") or VAR_DIR / "media")
# STUDIO_STORAGE=s3://bucket keeps them in S3-compatible object storage instead (django-storages),
# still served only through those views (studio/web/media.py streams them with Range). The
# keys are boto3's own AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by boto3 from the
# environment and never copied into settings.
STUDIO_STORAGE = env("STUDIO_STORAGE")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if STUDIO_STORAGE:
    if not STUDIO_STORAGE.startswith("s3://") or not STUDIO_STORAGE.removeprefix("s3://"):
        raise ImproperlyConfigured(
            f"STUDIO_STORAGE must be s3://BUCKET (or empty: local disk), not {STUDIO_STORAGE!r}."
        )
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": STUDIO_STORAGE.removeprefix("s3://").strip("/"),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env("AWS_S3_REGION_NAME") or None,
            # Private objects, never linked to: the views stream them after the owner check.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # No key, token or secret is ever written to the log (studio/secrets.py).
    "filters": {"scrub": {"()": "studio.redaction.ScrubbingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["scrub"]}
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"studio": {"level": env("STUDIO_LOG_LEVEL", "INFO")}},
}

# django-q2. The ORM broker must be named or q2 silently falls back to Redis. A task that
# outlives `timeout` is killed; one not acknowledged within `retry` seconds is delivered
# again (at-least-once), so every task is idempotent. Renders take seconds and the
# job follower hands over after FOLLOW_STEP_SECONDS, so 120 s is a generous ceiling.
# `timeout` is also how long a step leases its job (studio/jobs.py): a step whose worker
# died is taken up by the follower that long after it started. Q_TIMEOUT shortens both
# (the crash tests do); it must stay below `retry`.
Q_RETRY = 180
Q_TIMEOUT = env_int("Q_TIMEOUT", 120)
if not 0 < Q_TIMEOUT < Q_RETRY:
    raise ImproperlyConfigured(
        f"Q_TIMEOUT must be more than 0 and less than {Q_RETRY} seconds, not {Q_TIMEOUT}."
    )
# Q_BROKER=redis://… makes Redis q2's broker. It is at-most-once: a task taken by a worker
# that is killed is lost, and the follower takes its job up from the database (README:
# Running at scale). Empty: the ORM broker, in the database itself.
Q_BROKER = env("Q_BROKER")
if Q_BROKER and not Q_BROKER.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"Q_BROKER must be a redis:// URL (or empty), not {Q_BROKER!r}.")
Q_CLUSTER = {
    "name": "studio",
    **({"redis": Q_BROKER} if Q_BROKER else {"orm": "default"}),
    "workers": env_int("Q_WORKERS", 3),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": 3,
    "ack_failures": True,
    "queue_limit": 4,
    "catch_up": False,
    "poll": 0.2,
    # Successful tasks are not stored (failed ones are): q2 saves each result in a write
    # transaction that first loads every stored success, so with hundreds kept a task costs
    # several times the CPU and holds SQLite's write lock meanwhile (README: The job engine).
    # Jobs and the ledger are the record of what was done.
    "save_limit": -1,
    "label": "Task queue",
}

# Studio's own settings.
STUDIO_PROVIDER = env("STUDIO_PROVIDER", "local")
STUDIO_MAX_UPLOAD_BYTES = env_int("STUDIO_MAX_UPLOAD_MB", 20) * 1024 * 1024
# The most one request may send: two stills (a form without JavaScript sends both) and the
# rest of the form. Larger bodies are refused before they are read (studio/web/uploads.py),
# and no file keeps more than STUDIO_MAX_UPLOAD_BYTES while it streams in.
STUDIO_MAX_REQUEST_BYTES = 2 * STUDIO_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "studio.web.uploads.StillSizeLimit",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
STUDIO_MAX_PIXELS = env_int("STUDIO_MAX_MEGAPIXELS", 40) * 1_000_000
STUDIO_MIN_SHORT_SIDE = 512
STUDIO_WARN_SHORT_SIDE = 720
# Stills are scaled down to this long side: enough for 1080p output with room to move.
STUDIO_MAX_LONG_SIDE = env_int("STUDIO_MAX_LONG_SIDE", 2560)
# Transparent pixels are flattened onto this colour.
STUDIO_ALPHA_BACKGROUND = env("STUDIO_ALPHA_BACKGROUND", "#ffffff")
# Uploaded stills no job uses are purged this many days after their last upload (a daily task).
STUDIO_STILL_RETENTION_DAYS = env_int("STUDIO_STILL_RETENTION_DAYS", 30)
STUDIO_FOLLOW_STEP_SECONDS = env_int("STUDIO_FOLLOW_STEP_SECONDS", 50)
# Backpressure: at most this many submits to the providers a second, across every host
# (studio/throttle.py); 0 sends each job at once. Set it to what the workers can finish.
STUDIO_SUBMITS_PER_SECOND = env_int("STUDIO_SUBMITS_PER_SECOND", 0)
# Status calls in flight at once, per provider.
STUDIO_POLL_CONCURRENCY = env_int("STUDIO_POLL_CONCURRENCY", 16)
# A job not finished this long after it was created or submitted fails, refunded.
STUDIO_JOB_TIMEOUT_MINUTES = env_int("STUDIO_JOB_TIMEOUT_MINUTES", 30)
# Failover (off by default): a creator may let a job move to another provider that can make
# the same clip when theirs cannot take it; providers listed here are treated as down.
STUDIO_FAILOVER = env_bool("STUDIO_FAILOVER")
STUDIO_PROVIDERS_DOWN = env_list("STUDIO_PROVIDERS_DOWN", "")
# Limits for creators without their own (Quota rows override them, field by field).
STUDIO_DEFAULT_MONTHLY_BUDGET = env("STUDIO_DEFAULT_MONTHLY_BUDGET", "10.00")
STUDIO_DEFAULT_MONTHLY_SECONDS = env_int("STUDIO_DEFAULT_MONTHLY_SECONDS", 600)
STUDIO_DEFAULT_CONCURRENT_JOBS = env_int("STUDIO_DEFAULT_CONCURRENT_JOBS", 3)
# Comma-separated; empty: every provider / resolution.
STUDIO_DEFAULT_PROVIDERS = env_list("STUDIO_DEFAULT_PROVIDERS", "")
STUDIO_DEFAULT_RESOLUTIONS = env_list("STUDIO_DEFAULT_RESOLUTIONS", "")
# The most clips one request may make as a batch of variations.
STUDIO_MAX_BATCH = env_int("STUDIO_MAX_BATCH", 12)
STUDIO_DEMO_USERNAME = env("STUDIO_DEMO_USERNAME", "demo")
STUDIO_DEMO_PASSWORD = env("STUDIO_DEMO_PASSWORD", "studio-demo")

# Hosted providers. Each declares its own settings (keys, base URLs, model ids, extra media
# hosts) in its package, studio/providers/<name>/config.py; they are read here like the rest.
# Base URLs default to the real services; point them at the emulator (`python -m emulator`)
# to try every provider offline. A provider without its key is shown as unavailable.
for _setting in provider_settings():
    globals()[_setting.name] = _setting.from_environment()
STUDIO_PROVIDER_TIMEOUT = env_int("STUDIO_PROVIDER_TIMEOUT", 30)
# Largest MP4 accepted from a provider.
STUDIO_MAX_CLIP_BYTES = env_int("STUDIO_MAX_CLIP_MB", 200) * 1024 * 1024
# E-mail: the creators who ask are told when a clip or batch is ready. Printed to the
# worker's console unless EMAIL_HOST names an SMTP server (or EMAIL_BACKEND another backend).
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_BACKEND = env("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
SECRET_SETTINGS.add("EMAIL_HOST_PASSWORD")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both.")
# A slow mail server holds up only the e-mail task, and for this long at most.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Studio <studio@localhost>")

# Webhooks: where providers can reach Studio from outside (https://studio.example.com).
# Empty: no webhooks are asked for, and jobs are followed by polling alone.
STUDIO_PUBLIC_URL = env("STUDIO_PUBLIC_URL").rstrip("/")
