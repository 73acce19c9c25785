"""The embedded span store: a bounded SQLite file shared by the local mesh processes.

With no collector configured every process exports here, so ``mesh traces`` / ``mesh trace`` work
out of the box; OTLP export can run alongside. Writes come from the SDK's batch processor thread,
so this module uses the synchronous ``sqlite3`` driver (WAL: readers never block writers).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

__all__ = ["SpanRow", "SpanStore", "SqliteSpanExporter", "TraceSummary"]

DEFAULT_MAX_SPANS = 200_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    span_id TEXT NOT NULL, trace_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
    kind TEXT NOT NULL, service TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    status TEXT NOT NULL, status_message TEXT, attributes TEXT NOT NULL, events TEXT NOT NULL,
    links TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans(start_ns);
"""


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=5, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    # telemetry, not records: an OS crash may lose the last batch, a process crash loses nothing
    connection.execute("PRAGMA synchronous=OFF")
    connection.executescript(_SCHEMA)
    return connection


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


class SqliteSpanExporter(SpanExporter):
    """Appends finished spans; keeps the newest ``max_spans`` (older ones are deleted in bulk)."""

    def __init__(self, path: Path, service: str, max_spans: int = DEFAULT_MAX_SPANS) -> None:
        self.path = path
        self.service = service
        self.max_spans = max_spans
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._written = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [self._row(span) for span in spans]
        try:
            with self._lock:
                if self._connection is None:
                    self._connection = _connect(self.path)
                with self._connection:
                    self._connection.executemany("INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                self._written += len(rows)
                if self._written >= max(1000, self.max_spans // 20):
                    self._trim()
        except sqlite3.Error:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _trim(self) -> None:
        assert self._connection is not None
        self._written = 0
        with self._connection:
            self._connection.execute(
                "DELETE FROM spans WHERE start_ns < (SELECT start_ns FROM spans ORDER BY start_ns DESC LIMIT 1 OFFSET ?)",
                (self.max_spans,),
            )

    def _row(self, span: ReadableSpan) -> tuple[Any, ...]:
        context = span.get_span_context()
        resource_service = span.resource.attributes.get("service.name", self.service) if span.resource else self.service
        return (
            _hex(context.span_id, 16),
            _hex(context.trace_id, 32),
            _hex(span.parent.span_id, 16) if span.parent else None,
            span.name,
            span.kind.name,
            str(resource_service),
            span.start_time or 0,
            span.end_time or span.start_time or 0,
            span.status.status_code.name,
            span.status.description,
            json.dumps(dict(span.attributes), default=str) if span.attributes else "{}",
            json.dumps([{"name": e.name, "at": e.timestamp, "attributes": dict(e.attributes or {})} for e in span.events],
                       default=str) if span.events else "[]",
            json.dumps([{"trace_id": _hex(l.context.trace_id, 32), "span_id": _hex(l.context.span_id, 16)}
                        for l in span.links]) if span.links else "[]",
        )

    def shutdown(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class SpanRow:
    span_id: str
    trace_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, str]]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def failed(self) -> bool:
        return self.status == StatusCode.ERROR.name


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    root: str
    services: list[str]
    spans: int
    start_ns: int
    duration_ms: float
    errors: int


class SpanStore:
    """Read side of the span file, for the CLI and tests."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        connection = _connect(self.path)
        connection.row_factory = sqlite3.Row
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def trace(self, trace_id: str) -> list[SpanRow]:
        """All spans of one trace (a unique id prefix is enough), oldest first."""
        return self._spans("SELECT * FROM spans WHERE trace_id LIKE ? ORDER BY start_ns", (trace_id.lower() + "%",))

    def tool_calls(self, since_ns: int = 0) -> list[SpanRow]:
        """Every tool execution since ``since_ns`` (what ``mesh stats`` summarises): our
        ``execute_tool`` spans (A2A) and the mcp SDK's ``tools/call`` SERVER spans (MCP)."""
        return self._spans(
            "SELECT * FROM spans WHERE (name LIKE 'execute_tool %' OR (name LIKE 'tools/call %' AND kind = 'SERVER'))"
            " AND start_ns >= ? ORDER BY start_ns",
            (since_ns,),
        )

    def _spans(self, sql: str, params: tuple[Any, ...]) -> list[SpanRow]:
        rows = self._rows(sql, params)
        return [
            SpanRow(
                span_id=r["span_id"], trace_id=r["trace_id"], parent_id=r["parent_id"], name=r["name"], kind=r["kind"],
                service=r["service"], start_ns=r["start_ns"], end_ns=r["end_ns"], status=r["status"],
                status_message=r["status_message"], attributes=json.loads(r["attributes"]),
                events=json.loads(r["events"]), links=json.loads(r["links"]),
            )
            for r in rows
        ]

    def recent(self, last: int = 20) -> list[TraceSummary]:
        """The newest traces, newest first."""
        rows = self._rows(
            "SELECT trace_id, MIN(start_ns) AS start_ns, MAX(end_ns) AS end_ns, COUNT(*) AS spans,"
            " SUM(status = 'ERROR') AS errors, GROUP_CONCAT(DISTINCT service) AS services"
            " FROM spans GROUP BY trace_id ORDER BY start_ns DESC LIMIT ?",
            (last,),
        )
        summaries = []
        for r in rows:
            root = self._rows(
                "SELECT name FROM spans WHERE trace_id = ? ORDER BY (parent_id IS NOT NULL), start_ns LIMIT 1",
                (r["trace_id"],),
            )
            summaries.append(
                TraceSummary(
                    trace_id=r["trace_id"], root=root[0]["name"] if root else "?",
                    services=sorted((r["services"] or "").split(",")), spans=r["spans"], start_ns=r["start_ns"],
                    duration_ms=(r["end_ns"] - r["start_ns"]) / 1e6, errors=r["errors"] or 0,
                )
            )
        return summaries
