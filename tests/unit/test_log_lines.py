"""Every JSON log line carries the request id, and the trace and span ids of the current span."""

import json
import logging

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from services.common.logging import JsonFormatter, request_id_var


def line(message: str) -> dict[str, object]:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, message, None, None)
    return json.loads(JsonFormatter("billing").format(record))


def test_a_line_inside_a_span_names_its_trace_and_span() -> None:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    token = request_id_var.set("req-1")
    try:
        with trace.use_span(NonRecordingSpan(context)):
            inside = line("inside")
    finally:
        request_id_var.reset(token)
    assert inside["request_id"] == "req-1"
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["span_id"] == "b7ad6b7169203331"


def test_a_line_outside_any_span_has_no_trace_fields() -> None:
    outside = line("outside")
    assert "trace_id" not in outside
    assert "span_id" not in outside
    assert "request_id" not in outside
