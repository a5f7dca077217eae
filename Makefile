# `make run` brings Studio up; `make test` runs every test. Both can be re-run safely.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Settings for the local product: a generated secret key kept in var/ (never committed),
# unless SECRET_KEY is already set in the environment.
LOCAL_ENV = SECRET_KEY="$${SECRET_KEY:-$$(cat var/secret_key)}"


.PHONY: run run-emulated setup test test-sqlite test-stack docker-test lint bench bench-engine \
	bench-scale clean postgresql redis-server host-tools

run: setup
	$(LOCAL_ENV) $(BIN)/python manage.py serve

# Studio with all five hosted providers answered by the emulator (20 s per clip), offline.
# The emulator writes the settings that point Studio at it to var/emulator.env (Vertex AI's
# service-account key to var/emulator-vertex-key.json).
run-emulated: setup
	rm -f var/emulator.env
	$(BIN)/python -m emulator --port 8765 --latency 20 --env-file var/emulator.env \
		--vertex-key var/emulator-vertex-key.json & \
		trap 'kill $$!' EXIT INT TERM; \
		while [ ! -f var/emulator.env ]; do sleep 0.1; done; \
		set -a; . ./var/emulator.env; set +a; \
		$(LOCAL_ENV) $(BIN)/python manage.py serve

setup: $(VENV)/.installed var/secret_key
	$(LOCAL_ENV) $(BIN)/python manage.py migrate --noinput
	$(LOCAL_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(LOCAL_ENV) $(BIN)/python manage.py demo_account

# Every test twice: on SQLite with the ORM broker and local media, then on the production stack
# (throwaway PostgreSQL, Redis as q2's broker, moto's S3 server: tests/stack.py), where the
# hosts test runs too; then the Docker image, built and run.
test: $(VENV)/.installed-test /usr/bin/chromium postgresql redis-server
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MAKE) test-sqlite test-stack docker-test

test-sqlite: $(VENV)/.installed-test
	$(BIN)/python -m pytest

test-stack: $(VENV)/.installed-test postgresql redis-server host-tools
	$(BIN)/python -m tests.stack $(BIN)/python -m pytest -p no:cacheprovider

# The image from a Debian base made here (no Docker Hub), run against a throwaway PostgreSQL
# and Redis: one clip made over HTTP (tests/docker_smoke.py).
docker-test: $(VENV)/.installed-test postgresql redis-server host-tools
	$(BIN)/python -m tests.docker_smoke

lint: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed
	$(BIN)/python bench/render.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/finish.py

# The job engine under bursts of jobs at the emulated providers (a few minutes; see README).
bench-engine: $(VENV)/.installed
	$(BIN)/python bench/engine.py --jobs 500 --latency 20
	$(BIN)/python bench/engine.py --jobs 500 --latency 20 --webhooks
	$(BIN)/python bench/engine.py --jobs 1000 --latency 20

# The engine on SQLite with one worker host beside PostgreSQL + Redis with two, paced
# (bench/scale.py; about fifteen minutes).
bench-scale: $(VENV)/.installed-test postgresql redis-server
	$(BIN)/python bench/scale.py --pace 20

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Studio needs Python 3.11 or newer ($(PYTHON) is older)."; exit 1; }
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

/usr/bin/chromium:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends chromium fonts-dejavu-core

# The quota race tests also run on a throwaway PostgreSQL started from Debian's server binaries
# (tests/postgres.py); the version in their path varies, hence a check rather than a file target.
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends postgresql; }

# The production stack's tests: Redis (started by the tests themselves), Docker and what the
# hosts test builds its network with.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends redis-server; }

host-tools:
	@{ command -v dockerd && command -v debootstrap && command -v ip; } >/dev/null 2>&1 || { \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends \
			docker.io debootstrap iproute2; }

var/secret_key:
	mkdir -p var
	$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	chmod 600 $@

clean:
	rm -rf $(VENV) var
