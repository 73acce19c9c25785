"""Exporter plumbing: a guard for collectors that are down, and a fan-out to several exporters.

The guard: stop trying for a while instead of paying for it.

A dead OTLP endpoint costs every batch an encode, a connection attempt, retries and a logged
warning: measured 20-30 % of a hop's throughput (bench/tracing.py). After a failed export the
guard drops batches unencoded for a back-off period (1 s, doubling to 60 s) and then tries again,
so a collector that comes back gets spans within a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["BackoffExporter", "FanOutExporter"]

log = logging.getLogger("tracing")


class BackoffExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, first: float = 1.0, longest: float = 60.0) -> None:
        self.inner = inner
        self.first, self.longest = first, longest
        self._delay = 0.0
        self._resume_at = 0.0
        self._dropped = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            if time.monotonic() < self._resume_at:
                self._dropped += len(spans)
                return SpanExportResult.FAILURE
        result = self.inner.export(spans)
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                if self._delay:
                    log.info("span export recovered (%d spans dropped while the collector was down)", self._dropped)
                self._delay, self._dropped = 0.0, 0
            else:
                self._delay = min(self.longest, self._delay * 2 if self._delay else self.first)
                self._resume_at = time.monotonic() + self._delay
                log.warning("span export failed; next attempt in %.0f s", self._delay)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class FanOutExporter(SpanExporter):
    """Hands each batch to several exporters in turn; one failing does not stop the others."""

    def __init__(self, exporters: list[SpanExporter]) -> None:
        self.exporters = exporters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        results = []
        for exporter in self.exporters:
            try:
                results.append(exporter.export(spans))
            except Exception:  # an exporter that raises must not cost the others their batch
                log.exception("span exporter %s failed", type(exporter).__name__)
                results.append(SpanExportResult.FAILURE)
        return SpanExportResult.SUCCESS if all(r is SpanExportResult.SUCCESS for r in results) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        for exporter in self.exporters:
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(exporter.force_flush(timeout_millis) for exporter in self.exporters)
