# Two commands on a fresh machine: `make demo` and `make test`.
# Both create ./.venv and install the project with its test dependencies first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo check test lint format-check typecheck imports crds-check konnector-manifests-check scenarios lowest e2e nightly \
	bench bench-konnector clean helm dexbin redis plugin krewvalidate

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

format-check: $(STAMP)
	@echo ">> ruff format --check"
	@$(BIN)/ruff format --check .

typecheck: $(STAMP)
	@echo ">> mypy --strict kbcore kbshell kbsim"
	@$(BIN)/mypy

imports: $(STAMP)
	@echo ">> import-linter"
	@$(BIN)/lint-imports

crds-check: $(STAMP)
	@echo ">> generated CRDs match crds/"
	@$(BIN)/python tools/gen_crds.py --check

# The chart rendered for `kubectl bind --install-konnector` (kbshell/data/konnector.yaml) must
# equal a fresh `helm template`; needs helm, so it runs in `make test`, not `make check`.
konnector-manifests-check: $(STAMP) helm
	@echo ">> kbshell/data/konnector.yaml matches a fresh render of charts/konnector"
	@$(BIN)/python tools/gen_konnector_manifests.py --check

scenarios: $(STAMP)
	@echo ">> example scenarios"
	@set -e; for s in examples/scenarios/*/scenario.yaml; do \
	  $(BIN)/kbsim run "$$s" --json > /dev/null || { echo "scenario failed: $$s"; $(BIN)/kbsim run "$$s"; exit 1; }; \
	  echo "   ok  $$s"; done

# The inner loop (a few minutes): everything that needs no real API server and no Go build.
# The seeded-bug suite (does the property suite catch deliberately broken kernels? each search
# runs until it finds the bug: ~6 of the ~8 property minutes) is left to make test.
check: lint format-check typecheck imports crds-check scenarios
	@echo ">> pytest tests/unit tests/property (hypothesis dev profile, no seeded bugs)"
	@HYPOTHESIS_PROFILE=dev $(BIN)/pytest -q -m "not realcluster" tests/unit tests/property \
	  --ignore=tests/property/test_seeded_bugs.py

test: lint format-check typecheck imports crds-check konnector-manifests-check scenarios lowest k8sbin \
	helm dexbin redis plugin krewvalidate
	@echo ">> pytest (two workers, a test file per worker at a time: pytest-xdist --dist loadfile)"
	@HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -n 2 --dist loadfile

# The lowest kubernetes client pyproject.toml allows, in its own venv (created once, then
# reused): the client's tests that need no API server run against it.
LOWEST_VENV := .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed
KUBERNETES_LOWEST := $(shell sed -n 's/^ *"kubernetes>=\([0-9.]*\).*/\1/p' pyproject.toml)
LOWEST_TESTS := tests/unit/shell tests/unit/test_kbshell_reflector.py

$(LOWEST_STAMP): pyproject.toml
	@echo ">> creating $(LOWEST_VENV) with kubernetes==$(KUBERNETES_LOWEST), the lowest supported"
	@test -x $(LOWEST_VENV)/bin/python || $(PYTHON) -m venv $(LOWEST_VENV)
	@$(LOWEST_VENV)/bin/python -m pip install -q --upgrade pip
	@$(LOWEST_VENV)/bin/python -m pip install -q -e '.[test]' 'kubernetes==$(KUBERNETES_LOWEST)'
	@touch $(LOWEST_STAMP)

lowest: $(LOWEST_STAMP)
	@echo ">> client tests on kubernetes==$(KUBERNETES_LOWEST)"
	@$(LOWEST_VENV)/bin/pytest -q -p no:cacheprovider $(LOWEST_TESTS)

-include hack/k8s/k8s.mk

# helm for the chart tests (tests/chart), built from the Go module proxy into
# ~/.cache/kube-bind/helm/<version>; a no-op once built (hack/helm/build.sh).
helm:
	@bash hack/helm/build.sh

# Dex, the OIDC provider of the login tests (tests/harness/oidc.py), built the same way into
# ~/.cache/kube-bind/dex/<version>; a no-op once built (hack/dex/build.sh).
dexbin:
	@bash hack/dex/build.sh

# The kubectl-bind plugin users install (tools/build_plugin.py): dist/kubectl-bind, a zipapp that
# needs only python3 >= 3.11, the krew archive dist/kubectl-bind.tar.gz, and the krew manifest
# dist/krew/bind.yaml with that archive's sha256 (plugins/krew/bind.yaml is its template).
plugin: $(STAMP)
	@echo ">> kubectl-bind plugin (zipapp, krew archive and manifest) into dist/"
	@$(BIN)/python tools/build_plugin.py

# krew and its manifest validator for the packaging tests (tests/packaging), built the same way
# into ~/.cache/kube-bind/krew/<version>; a no-op once built (hack/krew/build.sh).
krewvalidate:
	@bash hack/krew/build.sh >/dev/null

# redis-server for the session-store tests (tests/harness/oidc.py), from Debian's packages when it
# is not on PATH already. apt-get needs root: as another user, install redis-server yourself.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo ">> installing redis-server from Debian's packages (apt-get update, then install)"; \
	  export DEBIAN_FRONTEND=noninteractive; log=$$(mktemp); \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; } \
	    >"$$log" 2>&1 || { cat "$$log"; rm -f "$$log"; echo "redis: apt-get failed" >&2; exit 1; }; \
	  rm -f "$$log"; }
	@echo ">> $$(redis-server --version | cut -d' ' -f1-3)"

nightly: $(STAMP)
	@echo ">> property suite, nightly profile (5,000 examples; tens of minutes)"
	@HYPOTHESIS_PROFILE=nightly $(BIN)/pytest -q tests/property

e2e: $(STAMP) k8sbin dexbin redis
	@$(BIN)/pytest -q -m "realcluster or realservice" tests/e2e

bench: $(STAMP)
	@$(BIN)/python bench/kernel_bench.py

# The konnector process on two real clusters: 1,000-object sync, latency, RSS, writes at rest.
bench-konnector: $(STAMP) k8sbin
	@$(BIN)/python bench/konnector_bench.py

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
