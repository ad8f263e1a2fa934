# Tatame Billing. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

# uv's version lives in pyproject.toml ([tool.uv] required-version); the Dockerfile reads it too.
UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
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
ORG ?=
ROLE ?= org:admin
PERMISSIONS ?=
ARGS ?= list
# `make token USER=…`: USER from the command line only (the environment's USER is the login name).
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),user_123)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

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

# --- contracts -------------------------------------------------------------------------------
BUF := $(VENV)/bin/buf
# `buf breaking` compares proto/ with the last commit on main: on a branch, the commit it forked
# from; on main itself (CI's fresh clone), the commit before HEAD. BUF_AGAINST=<commit> overrides.
BUF_AGAINST ?= $(shell base=$$(git merge-base HEAD main 2>/dev/null || true); \
	if [ -z "$$base" ] || [ "$$base" = "$$(git rev-parse HEAD)" ]; then git rev-parse HEAD~1; else echo "$$base"; fi)

.PHONY: proto
proto: $(SYNCED) ## Regenerate the Python code from proto/ (committed; never edit it by hand)
	find proto -name '*_pb2*.py*' -delete
	$(PY) -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto --grpc_python_out=proto $(PROTO_FILES)

.PHONY: proto-check
proto-check: proto ## Fail when the committed generated code differs from a fresh `make proto`
	@if [ -n "$$(git status --porcelain -- proto)" ]; then \
		echo "generated code in proto/ is stale: run 'make proto' and commit"; git status --short -- proto; exit 1; fi

.PHONY: buf-lint
buf-lint: $(SYNCED) ## Lint the protos with buf (STANDARD rules, proto/buf.yaml)
	cd proto && ../$(BUF) lint

.PHONY: buf-breaking
buf-breaking: $(SYNCED) ## Fail on a wire- or source-breaking proto change since the last commit on main
	@test -n "$(BUF_AGAINST)" || { echo "buf-breaking: no commit to compare with (set BUF_AGAINST)"; exit 1; }
	@echo "buf breaking against $(BUF_AGAINST)"
	cd proto && ../$(BUF) breaking --against '../.git#ref=$(BUF_AGAINST),subdir=proto'

# --- quality ---------------------------------------------------------------------------------
.PHONY: lint
lint: $(SYNCED) ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: typecheck
typecheck: $(SYNCED) ## mypy ([tool.mypy] in pyproject.toml: strict on services/ and gateway/)
	$(VENV)/bin/mypy

.PHONY: fmt
fmt: $(SYNCED) ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The e2e tests start a private redis-server of their own (a free port, nothing on disk): Debian's,
# installed here when missing (as root, as on CI), never the machine's running one.
.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; }

.PHONY: test
test: $(SYNCED) redis-server ## Every test, in a random order (PYTEST_ARGS=--randomly-seed=N repeats one)
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(SYNCED) ## Unit tests only (pure logic, no servers)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: $(SYNCED) ## Integration tests only (real Postgres, gRPC servers, Stripe emulator)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: $(SYNCED) redis-server ## End-to-end tests only (HTTP through a real gateway to the whole stack)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Stripe's test mode instead of the emulator: needs the network and STRIPE_SECRET_KEY=sk_test_…
# (never run by CI). Tests that only the emulator can run (its own, webhooks sent to loopback,
# Checkout's hosted page) are skipped; the run's test clocks are deleted at the end.
.PHONY: test-stripe
test-stripe: $(SYNCED) redis-server ## Billing's integration and e2e tests against Stripe test mode (STRIPE_SECRET_KEY=sk_test_…)
	@if [ -z "$${STRIPE_SECRET_KEY:-}" ]; then \
		echo "test-stripe skipped: set STRIPE_SECRET_KEY=sk_test_… (a Stripe test-mode key) to run it"; \
	else \
		TATAME_TEST_STRIPE=test-mode $(PY) -m pytest tests/integration tests/e2e $(PYTEST_ARGS); \
	fi

# --- running ---------------------------------------------------------------------------------
.PHONY: run
run: $(SYNCED) ## The whole system on loopback (embedded Postgres, Stripe emulator, dev issuer)
	$(PY) -m tatame_devstack.run

.PHONY: token
token: $(SYNCED) ## Print a dev session token: make token USER=user_123 [ORG=org_1 [ROLE=org:member] [PERMISSIONS=org:billing:manage]]
	@$(PY) -m tatame_devstack.dev_issuer --user "$(TOKEN_USER)" $(if $(ORG),--org "$(ORG)" --role "$(ROLE)" --permissions "$(PERMISSIONS)",)

.PHONY: events
events: $(SYNCED) ## Operators' event CLI against `make run`: make events ARGS="list --state dead"
	$(PY) -m tatame_devstack.events $(ARGS)

.PHONY: notifications
notifications: $(SYNCED) ## Operators' notifications CLI against `make run`: make notifications ARGS="list --state dead"
	$(PY) -m tatame_devstack.notifications $(ARGS)

.PHONY: metrics
metrics: $(SYNCED) ## Operators' revenue metrics against `make run` (last 30 days): make metrics ARGS="--since 2026-11-01 --plans"
	$(PY) -m tatame_devstack.metrics $(if $(filter command line,$(origin ARGS)),$(ARGS),)

.PHONY: bench
bench: $(SYNCED) ## Load benchmarks (~3-4 min; wrk, installed if missing): each figure beside its target, MET or MISSED
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m bench

.PHONY: bench-usage
bench-usage: $(SYNCED) ## Usage ingestion: RecordUsage calls/s beside CheckEntitlement, and the sender's drain (~1 min)
	$(PY) -m bench.usage

.PHONY: clean
clean: ## Remove the environment and local state (.venv, .tools, .devdata)
	rm -rf $(VENV) .venv-3.13 $(TOOLS) .devdata

# --- deployment ------------------------------------------------------------------------------
.PHONY: k8s-check
k8s-check: $(SYNCED) ## Render, validate and cross-check deploy/k8s; smoke-run the dev overlay locally
	$(PY) -m tatame_devstack.k8s_check --root deploy/k8s
	$(PY) -m tatame_devstack.k8s_smoke --root deploy/k8s --overlay dev
