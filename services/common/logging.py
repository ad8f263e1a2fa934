"""One JSON log line per record, carrying the request id of the call being served and, when
traces are on, the trace and span ids of the current span."""

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# How a request id travels from the gateway to the services it calls (gRPC metadata).
REQUEST_ID_METADATA = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def valid_request_id(given: str | None) -> str | None:
    """`given` when it is a well-formed request id (it goes into every log line), else None."""
    return given if given is not None and _VALID_REQUEST_ID.match(given) else None


class JsonFormatter(logging.Formatter):
    """Formats records as single-line JSON with time, level, service, logger and request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        extra = getattr(record, "fields", None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(*, service: str, level: str) -> None:
    """Route every logger (ours, uvicorn's, grpc's) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Per-request lines of HTTP clients are noise at INFO; their warnings and errors still show.
    for name in ("httpx", "stripe"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    # One access line per request is written by the gateway's middleware with its request id.
    logging.getLogger("uvicorn.access").disabled = True
