# Parley: `make run` serves the app on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# The real media server: livekit-server built from its Go module once (pure Go, no cgo).
LIVEKIT_VERSION := v1.13.5
LIVEKIT_BIN := .cache/livekit/bin/server

.PHONY: run serve test fuzz install venv migrate seed web worker beat bench screenshots lint format check clean livekit

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# livekit-server into .cache/livekit/bin (skipped when built; `rm` it to rebuild).
livekit: $(LIVEKIT_BIN)

$(LIVEKIT_BIN):
	@command -v go >/dev/null || { echo "make livekit needs Go 1.26 (https://go.dev/dl/)"; exit 1; }
	@echo "Building livekit-server $(LIVEKIT_VERSION) from its Go module (minutes the first time)"
	GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN=$(CURDIR)/.cache/livekit/bin \
		go install -trimpath github.com/livekit/livekit-server/cmd/server@$(LIVEKIT_VERSION)

# Web (ASGI, uvicorn) + Celery worker + beat + livekit-server (dev mode, webhooks to Parley)
# in one terminal; Ctrl-C stops them all. Without Go or the binary, media is left out and
# one line says how to add it.
run: seed
	@mkdir -p var/celery
	@if [ ! -x $(LIVEKIT_BIN) ] && command -v go >/dev/null; then \
		$(MAKE) --no-print-directory livekit || echo "livekit: the build failed; see above"; fi
	@echo "Parley on http://$(HOST):$(PORT)/  (API docs: /api/v1/docs/, admin: /admin/)"
	@trap 'kill 0' INT TERM EXIT; \
	$(PY) scripts/livekit_server.py run --webhook http://$(HOST):$(PORT)/livekit/webhook & \
	$(VENV)/bin/celery -A dashboard worker --loglevel=INFO --concurrency=2 --pool=threads & \
	$(VENV)/bin/celery -A dashboard beat --loglevel=INFO & \
	$(VENV)/bin/uvicorn dashboard.asgi:application --host $(HOST) --port $(PORT) --no-access-log --no-proxy-headers & \
	wait

# The production web server (scripts/serve.py: uvicorn, WEB_CONCURRENCY workers, uvloop,
# httptools, no access log, proxy headers only from FORWARDED_ALLOW_IPS). Set DEBUG=0,
# SECRET_KEY, LIVEKIT_*, DATABASE_URL and REDIS_URL first (README, "Production").
serve: install
	$(PY) manage.py collectstatic --noinput -v 0
	HOST=$(HOST) PORT=$(PORT) $(PY) scripts/serve.py

test: install
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Schemathesis over the whole OpenAPI schema and hypothesis over the websocket handlers, with
# a fixed seed and a few hundred examples each (`make test` runs the same tests with a few).
FUZZ_EXAMPLES ?= 200
fuzz: install
	PARLEY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_api_fuzz.py tests/test_socket_fuzz.py $(PYTEST_ARGS)

bench: install
	$(PY) bench/run.py
	$(PY) bench/run.py schedule --burst 1000

# Pictures of the dashboard's main pages in docs/screenshots/ (needs /usr/bin/chromium).
screenshots: install
	$(PY) scripts/screenshots.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

check: install
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

clean:
	rm -rf $(VENV) node_modules var staticfiles db.sqlite3
