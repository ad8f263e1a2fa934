# syntax=docker/dockerfile:1
# One image for every deployable; each Kubernetes container sets its command:
#   python -m gateway | python -m services.billing serve|migrate|sync-catalog
#   python -m services.webhooks receiver|relay|migrate|backstop|retention
# Build from the repository root:  docker build -t tatame-billing:<version> .
#
# Only the root project's runtime dependencies from uv.lock go in: no dev group, no devstack/
# (it imports localstripe, GPL-3.0), no tests, no build tools, no secrets.

# Pin by digest in CI (python:3.11-slim@sha256:…) for reproducible builds; both stages must use
# the same image, as the virtual environment links to its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, so that a code change reuses this layer. devstack's pyproject.toml is read
# only because it is a workspace member of the lock; --no-dev leaves it (and localstripe) out.
COPY pyproject.toml uv.lock ./
COPY devstack/pyproject.toml devstack/pyproject.toml
# uv's version has one home: pyproject.toml's [tool.uv] required-version (the Makefile reads it too).
RUN pip install "uv$(python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["uv"]["required-version"])')"
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-project --no-install-workspace
COPY gateway gateway
COPY services services
COPY proto proto
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable
# Fail the build if anything dev-only got in, or if a deployable cannot import.
RUN /app/.venv/bin/python -c "import gateway.app, services.billing.__main__, services.webhooks.__main__, tatame.billing.v1.billing_pb2" \
 && for dev_only in tatame_devstack localstripe pytest; do \
      if /app/.venv/bin/python -c "import ${dev_only}" 2>/dev/null; then \
        echo "dev-only package ${dev_only} is in the image" >&2; exit 1; fi; \
    done

FROM ${PYTHON_IMAGE} AS runtime
# The interpreter's own installers are not needed at run time.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel 2>/dev/null || true \
 && groupadd --system --gid 10001 tatame \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tatame
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
# Numeric, so that Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080 8081 50051 50052 9102
CMD ["python", "-c", "raise SystemExit('choose a command: python -m gateway | python -m services.billing serve|migrate|sync-catalog | python -m services.webhooks …')"]
