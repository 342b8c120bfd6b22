# The single entry point. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= .run
export DEVCLUSTER_RUN_DIR ?= $(abspath $(RUN_DIR)/devcluster)

.PHONY: help venv lint unit e2e test faults demo crd bench bench-node bench-traffic cluster-build cluster-up cluster-down cluster-status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed  ## create .venv with the locked dependencies

lint: venv  ## ruff, mypy (strict), import-linter (the layers)
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv  ## pure tests, no cluster
	$(BIN)/pytest tests/unit -q

cluster-build: venv  ## build (or find) the control plane's and the real node's binaries (metrics-server too), and helm and kstatus for the tests
	$(BIN)/devcluster build --tool helm --tool kstatus

e2e: venv cluster-build  ## end-to-end tests against the local control plane
	$(BIN)/pytest tests/e2e -q

test: lint cluster-build  ## lint, then unit and e2e tests (the e2e suite starts its own control plane)
	@mkdir -p $(RUN_DIR)
	$(BIN)/pytest tests -q --junitxml=$(RUN_DIR)/junit.xml

# The fault suite runs in `make test` with light knobs; these are the heavier rounds.
FAULT_KNOBS ?= FAULT_ROUNDS=10 FAULT_BLOCKED_ATTEMPTS=6 FUZZ_EXAMPLES=100 SERVICE_EDIT_EXAMPLES=40
faults: venv cluster-build  ## the fault-injection suite, heavier rounds, then its figures table
	env $(FAULT_KNOBS) $(BIN)/pytest tests/e2e/test_faults.py tests/e2e/test_fuzz_admission.py tests/e2e/test_service_edits_property.py -q
	$(BIN)/python tests/e2e/faults_support.py

demo: venv cluster-build  ## start the local control plane, run the operator, show it working
	$(BIN)/python -m devcluster.demo

cluster-up: cluster-build  ## start the local control plane (detached)
	$(BIN)/devcluster up

cluster-status: venv
	$(BIN)/devcluster status

cluster-down: venv  ## stop the local control plane
	$(BIN)/devcluster down

clean:  ## remove the venv and run directories (the binary cache stays)
	rm -rf $(VENV) $(RUN_DIR) .mypy_cache .ruff_cache .pytest_cache

crd: venv  ## regenerate crds/ from operator/exposedapp/domain/crd.py and its copies in deploy/ (unit tests fail if stale)
	$(BIN)/exposedapp crd > crds/exposedapp.dev_exposedapps.yaml
	$(BIN)/python deploy/sync_copies.py

bench-node: venv cluster-build  ## the real node's figures: start-up, Pod start latency, memory, CPU
	$(BIN)/python -m devcluster.nodebench

BENCH_ARGS ?= --sizes 10,100,500 --replicas 2 --ports 2 --repeat 2
bench: venv cluster-build  ## side-by-side benchmark vs Deployments (results in bench-results/)
	$(BIN)/python -m devcluster.bench $(BENCH_ARGS)

BENCH_TRAFFIC_ARGS ?=
bench-traffic: venv cluster-build  ## failed requests on the real node while apps scale and roll, vs Deployments (BENCH_TRAFFIC_ARGS=--light for CI; results in bench-results/traffic/)
	$(BIN)/python -m devcluster.trafficbench $(BENCH_TRAFFIC_ARGS)
