# Two commands on a fresh machine: `make demo` and `make test`.
# Both create ./.venv and install the project with its test dependencies first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports crds-check scenarios e2e nightly bench bench-konnector clean helm

$(STAMP): pyproject.toml
	@echo ">> creating $(VENV) and installing kube-bind with test dependencies"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@$(BIN)/kbsim run examples/scenarios/quickstart/scenario.yaml

lint: $(STAMP)
	@echo ">> ruff"
	@$(BIN)/ruff check .

typecheck: $(STAMP)
	@echo ">> mypy --strict kbcore kbshell kbsim"
	@$(BIN)/mypy

imports: $(STAMP)
	@echo ">> import-linter"
	@$(BIN)/lint-imports

crds-check: $(STAMP)
	@echo ">> generated CRDs match crds/"
	@$(BIN)/python tools/gen_crds.py --check

scenarios: $(STAMP)
	@echo ">> example scenarios"
	@set -e; for s in examples/scenarios/*/scenario.yaml; do \
	  $(BIN)/kbsim run "$$s" --json > /dev/null || { echo "scenario failed: $$s"; $(BIN)/kbsim run "$$s"; exit 1; }; \
	  echo "   ok  $$s"; done

test: lint typecheck imports crds-check scenarios k8sbin helm
	@echo ">> pytest"
	@HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q

-include hack/k8s/k8s.mk

# helm for the chart tests (tests/chart), built from the Go module proxy into
# ~/.cache/kube-bind/helm/<version>; a no-op once built (hack/helm/build.sh).
helm:
	@bash hack/helm/build.sh

nightly: $(STAMP)
	@echo ">> property suite, nightly profile (5,000 examples; tens of minutes)"
	@HYPOTHESIS_PROFILE=nightly $(BIN)/pytest -q tests/property

e2e: $(STAMP) k8sbin
	@$(BIN)/pytest -q -m realcluster tests/e2e

bench: $(STAMP)
	@$(BIN)/python bench/kernel_bench.py

# The konnector process on two real clusters: 1,000-object sync, latency, RSS, writes at rest.
bench-konnector: $(STAMP) k8sbin
	@$(BIN)/python bench/konnector_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
