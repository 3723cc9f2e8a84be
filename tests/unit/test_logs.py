import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from runtime.logs import JsonFormatter, TraceContextFilter


def test_json_logs_carry_the_trace():
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord(
        "journeys.test", logging.WARNING, __file__, 1, "signal to %s failed", ("lead-1",), None
    )
    with tracer.start_as_current_span("work") as span:
        TraceContextFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "signal to lead-1 failed" and entry["level"] == "WARNING"
    assert entry["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "no span", (), None)
    TraceContextFilter().filter(outside)
    assert json.loads(JsonFormatter().format(outside))["trace_id"] is None
