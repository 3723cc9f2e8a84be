"""Tracing: one trace from the HTTP request, through the outbox and the signal, into the workflow,
its activities and their calls to the platforms.

`JOURNEYS_OTEL_EXPORTER`: `none`, `console`, `file` (JSON lines in `<data dir>/logs/traces.jsonl`,
what `dev` uses) or `otlp` (the standard `OTEL_EXPORTER_OTLP_*` variables say where).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from runtime.settings import Settings


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [span.to_json(indent=None) for span in spans]  # one line each, no re-encoding
        with self._lock, self._path.open("a") as out:
            out.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def setup_tracing(service: str, settings: Settings) -> TracerProvider | None:
    kind = settings.otel_exporter
    exporter: SpanExporter
    if kind == "none":
        return None
    if kind == "console":
        exporter = ConsoleSpanExporter()
    elif kind == "file":
        exporter = JsonLinesSpanExporter(settings.data_path / "logs" / "traces.jsonl")
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def current_trace_carrier() -> dict[str, str]:
    """The active trace context as W3C headers, to store beside work done later elsewhere."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: dict[str, Any] | None) -> Any:
    return propagate.extract(carrier or {})
