"""``configure(service_name)``: the one tracing set-up every mesh process calls.

Honours the standard environment (``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_EXPORTER`` = otlp | console | none,
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` / ``_PROTOCOL`` / ``_HEADERS`` / ``_TIMEOUT``,
``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``). Spans always go to the embedded span store under
``$MESH_HOME`` as well (``MESH_TRACE_STORE=false`` turns it off), so ``mesh traces`` works with no
collector. Export timeouts default to 2 s, so a dead collector never holds requests or shutdown.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from agents.settings import MeshSettings
from tracing.exporters import BackoffExporter, FanOutExporter
from tracing.conventions import ConventionProcessor
from tracing.span_store import SqliteSpanExporter

__all__ = ["Tracing", "configure", "content_recording", "span_store_path"]

log = logging.getLogger("tracing")
_FAST_EXPORT_DEFAULTS = {"OTEL_BSP_EXPORT_TIMEOUT": "2000", "OTEL_BSP_SCHEDULE_DELAY": "500"}


@dataclass
class Tracing:
    """What ``configure`` set up; ``shutdown`` flushes and stops the exporters."""

    service_name: str
    enabled: bool
    record_content: bool = False
    exporters: list[str] = field(default_factory=list)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None

    def shutdown(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def flush(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(2000)


_current: Tracing | None = None


def content_recording() -> bool:
    """Whether skill arguments and results go on spans (``MESH_TRACE_CONTENT``, off by default)."""
    return _current is not None and _current.record_content


def span_store_path(settings: MeshSettings) -> Path:
    return settings.home / "traces.db"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _otlp_protocol() -> str:
    return (_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").lower()


def _otlp_exporters() -> tuple[SpanExporter, MetricReader | None]:
    protocol = _otlp_protocol()
    if protocol not in ("http/protobuf", "http"):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: agent-mesh exports OTLP over http/protobuf; "
            "point it at the collector's HTTP port (4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    timeout = float(_env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or _env("OTEL_EXPORTER_OTLP_TIMEOUT") or 2)
    metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter(timeout=timeout), export_timeout_millis=timeout * 1000)
    return BackoffExporter(OTLPSpanExporter(timeout=timeout)), metric_reader


def configure(service_name: str, settings: MeshSettings | None = None) -> Tracing:
    """Set up tracing and metrics for this process (once; later calls return the first set-up)."""
    global _current
    if _current is not None:
        return _current
    settings = settings or MeshSettings.from_env()
    if (_env("OTEL_SDK_DISABLED") or "").lower() == "true":
        _current = Tracing(service_name, enabled=False)
        return _current
    for name, value in _FAST_EXPORT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # Attributes given to Resource.create beat OTEL_SERVICE_NAME: give ours only when the env has none.
    resource = Resource.create({} if _env("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(ConventionProcessor())  # enrichers run before exporters
    names = [n.strip().lower() for n in (_env("OTEL_TRACES_EXPORTER") or "").split(",") if n.strip()]
    exporters: dict[str, SpanExporter] = {}
    metric_readers: list[MetricReader] = []
    if settings.trace_store:
        exporters["store"] = SqliteSpanExporter(span_store_path(settings), service_name)
    for name in names:
        if name == "otlp":
            exporters["otlp"], metric_reader = _otlp_exporters()
            if metric_reader is not None:
                metric_readers.append(metric_reader)
        elif name == "console":
            exporters["console"] = ConsoleSpanExporter()
        elif name != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER={name}: use otlp, console or none")
    if exporters:  # one batch processor (one queue, one thread) for all exporters: half the cost of two
        provider.add_span_processor(BatchSpanProcessor(FanOutExporter(list(exporters.values()))))
    trace.set_tracer_provider(provider)
    meter_provider = None
    if metric_readers:  # with nothing to export to, the API's no-op meters cost nothing
        meter_provider = MeterProvider(resource=resource, metric_readers=metric_readers)
        metrics.set_meter_provider(meter_provider)
    _current = Tracing(service_name, True, settings.trace_content, list(exporters), provider, meter_provider)
    log.debug("tracing for %s: %s", service_name, ", ".join(exporters) or "no exporter")
    return _current
