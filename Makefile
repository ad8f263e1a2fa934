# Tatame Billing. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

UV_VERSION := 0.13.8
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
SYNCED := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

PROTO_FILES := $(shell find proto -name '*.proto')
PYTEST_ARGS ?=
USER ?= user_123

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml devstack/pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

.PHONY: venv
venv: $(SYNCED) ## Create .venv from the lock file

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after editing dependencies
	$(UV) lock --python $(PYTHON)
