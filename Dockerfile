# Production image. The same image runs the web server (default command) and the worker:
#   docker run -e SECRET_KEY=... -v studio-data:/data IMAGE python manage.py migrate
#   docker run -e SECRET_KEY=... -v studio-data:/data -p 8000:8000 IMAGE
#   docker run -e SECRET_KEY=... -v studio-data:/data IMAGE python manage.py qcluster
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/studio.sqlite3 \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
RUN useradd --create-home --uid 1000 studio && mkdir -p /data && chown studio /data

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml ./
RUN mkdir studio && touch studio/__init__.py && pip install . && pip uninstall -y studio \
    && rm -rf studio build *.egg-info

COPY . .
# collectstatic needs settings to load; this key is used for nothing else.
RUN SECRET_KEY=collectstatic-only-not-used-to-sign-anything-0000 \
    python manage.py collectstatic --noinput --verbosity 0

USER studio
VOLUME /data
EXPOSE 8000
CMD ["gunicorn", "studio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", \
     "--timeout", "60", "--access-logfile", "-"]
