# `make run` and `make test` work on a fresh Debian machine as root: they create .venv, install
# what is missing (Python and Debian packages), then serve or test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := wsgi

# WeasyPrint's Pango stack, HarfBuzz's subsetter (without it a Chinese receipt takes seconds
# instead of a fifth of one) and the Chinese fonts.
RUN_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk
# chromium for the browser tests (Playwright drives Debian's; `playwright install` would download one).
TEST_DEBS := $(RUN_DEBS) postgresql chromium redis-server

# `make bench`: wrk loads the HTTP benchmarks; SpiffWorkflow is the whole-case comparison (bench only).
BENCH_DEBS := $(TEST_DEBS) wrk
BENCH_SCRIPTS ?= engine whole_case clerk_http track_burst memory receipt sweep province

.PHONY: run test install install-test bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The pages' Chinese catalogue, compiled from the hand-written .po (the .mo is not in git).
translations/zh/LC_MESSAGES/messages.mo: translations/zh/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile -d translations

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed translations/zh/LC_MESSAGES/messages.mo
	bin/system-packages $(RUN_DEBS)

install-test: $(VENV)/.installed translations/zh/LC_MESSAGES/messages.mo
	bin/system-packages $(TEST_DEBS)

# The app takes its secret key only from FLASK_SECRET_KEY. For development `make run` makes one
# here, once (instance/ is not in git), and gives it to every process it starts; a FLASK_SECRET_KEY
# already in the environment wins. Deployments set their own (docs/deploy.md).
SECRET_KEY_FILE ?= instance/secret_key

$(SECRET_KEY_FILE):
	mkdir -p $(@D)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@.tmp && mv $@.tmp $@

# The web server and, beside it, the timer worker; stopping one (Ctrl-C) stops both.
run: install $(SECRET_KEY_FILE)
	export FLASK_SECRET_KEY="$${FLASK_SECRET_KEY:-$$(cat $(SECRET_KEY_FILE))}" && \
	$(BIN)/flask db upgrade && $(BIN)/flask demo && \
	{ $(BIN)/flask timers run & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/gunicorn --workers 2 --bind 127.0.0.1:$(PORT) --access-logfile - wsgi:app; }

# One pytest worker per core (pytest-xdist); on PostgreSQL each worker gets its own database.
JOBS ?= $(shell nproc)

test: install-test
	$(BIN)/python -m pytest -n $(JOBS)
	bin/with-postgres $(BIN)/python -m pytest -n $(JOBS)

# Every figure of bench/ with its ceiling, on SQLite and a throwaway PostgreSQL, then bench/RESULTS.md.
# About half an hour on 2 cores, most of it the province-scale data (BENCH_CASES, default 1 000 000).
bench: install-test $(VENV)/.bench-installed
	bin/system-packages $(BENCH_DEBS)
	rm -rf bench/results
	bin/with-postgres sh -c 'set -e; for s in $(BENCH_SCRIPTS); do echo "== bench/$$s.py"; $(BIN)/python bench/$$s.py; done'
	$(BIN)/python bench/results.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
