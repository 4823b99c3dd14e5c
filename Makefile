# Keyturn: `make run` to try it, `make test` to check it. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test setup install lint bench bench-introspect clean

# The demo's webhook endpoints are the local demo receiver (Procfile.demo), on 127.0.0.1.
run: export PORTAL_WEBHOOK_ALLOW_PRIVATE_TARGETS = 1
run: setup
	$(PY) manage.py seed_demo
	@$(PY) manage.py demo_logins
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile.demo

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

setup: install .env
	$(PY) manage.py migrate --noinput --verbosity 0
	$(PY) manage.py collectstatic --noinput --verbosity 0

install: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Written once, never overwritten: fresh keys and a random demo password for this checkout.
.env: | $(STAMP)
	$(PY) manage.py generate_keys --local > .env.tmp
	mv .env.tmp .env
	@echo "Wrote .env with fresh keys (git-ignored). Keep it private."

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(PY) bench/verify.py
	$(PY) bench/deliveries.py

bench-introspect: setup
	$(PY) bench/introspect.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .hypothesis
