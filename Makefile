# servingopt — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/servingopt
export SERVINGOPT_CACHE := $(CACHE)

.PHONY: help venv lint typecheck crds-check chart-sync controlplane system-deps image unit integration test demo clean

help:
	@echo "make test   install everything, lint, type-check and run every test tier"
	@echo "make demo   run servingopt on an embedded local cluster"
	@echo "make image  build the operator image (buildah, no Docker engine)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Debian packages the tests need: Prometheus (real server) and Chromium (report rendering).
system-deps:
	@hack/install-system-deps.sh

# The operator image from the Dockerfile, with buildah (no Docker engine needed).
image: system-deps
	@hack/build-image.sh

# kube-apiserver, controller-manager, scheduler, kubectl, etcd, kwok from Go modules (cached).
controlplane:
	@hack/build-controlplane.sh >/dev/null

lint: venv
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench

typecheck: venv
	$(VENV)/bin/mypy

crds-check: venv
	$(VENV)/bin/servingopt crds --check
	$(PY) hack/chart-sync.py --check

# Copy into the Helm chart what it shares with deploy/ (CRDs, RBAC, alerts, defaults).
chart-sync: venv
	$(PY) hack/chart-sync.py

unit: venv
	$(VENV)/bin/pytest -m "not integration and not e2e"

integration: venv system-deps controlplane
	$(VENV)/bin/pytest -m "integration or e2e"

test: venv system-deps controlplane lint typecheck crds-check
	$(VENV)/bin/pytest

demo: venv system-deps controlplane
	$(VENV)/bin/servingopt demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
