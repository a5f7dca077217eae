# Production image. The same image runs the web server (default command) and the worker:
#   docker run -e SECRET_KEY=... -e DATABASE_URL=postgres://... IMAGE python manage.py migrate
#   docker run -e SECRET_KEY=... -e DATABASE_URL=... -p 8000:8000 IMAGE
#   docker run -e SECRET_KEY=... -e DATABASE_URL=... --no-healthcheck IMAGE python manage.py qcluster
# Build args:
#   BASE_IMAGE  any Debian-like image with Python 3.11+ and its venv module (default below);
#               `make docker-test` uses a bookworm base made with debootstrap (no Docker Hub).
#   WHEELHOUSE  a folder in the build context holding wheels of Studio and every dependency
#               (`pip wheel --wheel-dir DIR .`): installed with no index, for builders that
#               cannot reach a package registry. Empty: install from PyPI.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG WHEELHOUSE=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/venv/bin:$PATH \
    DATABASE_URL=sqlite:////data/studio.sqlite3 \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000

WORKDIR /app
RUN python3 -m venv /venv \
    && useradd --create-home --uid 1000 studio && mkdir -p /data && chown studio /data

# Dependencies first, so code changes do not reinstall them. The wheelhouse (if any) is copied
# with pyproject.toml; the glob matches nothing when none was given.
COPY pyproject.toml ${WHEELHOUSE}*.whl /wheels/
RUN if ls /wheels/*.whl >/dev/null 2>&1; then \
        pip install --no-index --find-links /wheels studio && pip uninstall -y studio; \
    else \
        mkdir -p /tmp/deps/studio && cp /wheels/pyproject.toml /tmp/deps/ \
        && touch /tmp/deps/studio/__init__.py && pip install /tmp/deps && pip uninstall -y studio; \
    fi && rm -rf /tmp/deps

# The product alone: .dockerignore leaves out the tests, the benchmarks and the emulator.
COPY manage.py ./
COPY studio ./studio
COPY templates ./templates
COPY static ./static
# collectstatic needs settings to load; this key is used for nothing else.
RUN SECRET_KEY=collectstatic-only-not-used-to-sign-anything-0000 \
    python manage.py collectstatic --noinput --verbosity 0 \
    && test ! -e tests && test ! -e bench && test ! -e emulator

USER studio
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, sys, urllib.request; port = os.environ.get('PORT', '8000'); \
sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).read() != b'ok')"
# exec: gunicorn is PID 1 and gets docker stop's SIGTERM.
CMD ["sh", "-c", "exec gunicorn studio.wsgi --bind 0.0.0.0:${PORT} --workers 3 --threads 4 --timeout 60 --access-logfile -"]
