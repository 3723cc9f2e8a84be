"""The dev span exporter: one JSON span a line, as `logs/traces.jsonl` promises."""

import json
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from runtime.telemetry import JsonLinesSpanExporter


def test_each_span_is_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "traces.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/track") as parent:
        parent.set_attribute("http.status_code", 200)
        with tracer.start_as_current_span("route events"):
            pass
    lines = path.read_text().splitlines()
    spans = [json.loads(line) for line in lines]
    assert [span["name"] for span in spans] == ["route events", "POST /v1/track"]
    assert spans[1]["attributes"] == {"http.status_code": 200}
    assert spans[0]["parent_id"] == spans[1]["context"]["span_id"]
