"""Test settings: the product's settings module, with a throwaway secret and test-only speedups."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="studio-test-media-"))
os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="studio-test-static-"))

from studio.settings import *  # noqa: F403

# No collectstatic in tests: serve from the finders.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STUDIO_FOLLOW_STEP_SECONDS = 0
# pytest-django wraps each test in a transaction, idle while the test waits on a provider or a
# worker: PostgreSQL must not end it (the Studios the tests start keep the product's limit).
DATABASES["default"].get("OPTIONS", {}).pop("options", None)  # noqa: F405
# A file, like production: in-memory SQLite shares one cache between threads with table locks
# that ignore the busy timeout, which is not how Studio runs.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.mkdtemp(), "test.sqlite3")}  # noqa: F405
# The PostgreSQL race run (tests/test_postgres.py) may share a server with this run: it
# names its own test database so that neither drops the other's.
if os.environ.get("STUDIO_TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["STUDIO_TEST_DATABASE_NAME"]}  # noqa: F405
