# Parley: `make run` serves the app on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install venv migrate seed web worker beat bench screenshots lint format check clean

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

# Web (ASGI, uvicorn) + Celery worker + beat in one terminal; Ctrl-C stops all three.
run: seed
	@mkdir -p var/celery
	@echo "Parley on http://$(HOST):$(PORT)/  (API docs: /api/v1/docs/, admin: /admin/)"
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A dashboard worker --loglevel=INFO --concurrency=2 --pool=threads & \
	$(VENV)/bin/celery -A dashboard beat --loglevel=INFO & \
	$(VENV)/bin/uvicorn dashboard.asgi:application --host $(HOST) --port $(PORT) --no-access-log & \
	wait

test: install
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	$(PY) bench/run.py

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
