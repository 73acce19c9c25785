"""``mesh traces``, ``mesh trace ID`` and ``mesh stats``: the embedded span store in the terminal."""

from __future__ import annotations

import argparse
import time

from agents.cli.common import EXIT_FAILED, EXIT_OK
from agents.settings import MeshSettings
from tracing import span_store_path
from tracing.render import render_stats, render_trace_list, render_waterfall
from tracing.span_store import SpanStore

__all__ = ["add_parsers"]


def _store() -> tuple[SpanStore, MeshSettings]:
    settings = MeshSettings.from_env()
    return SpanStore(span_store_path(settings)), settings


def _traces(args: argparse.Namespace) -> int:
    store, _ = _store()
    print(render_trace_list(store.recent(args.last)))
    return EXIT_OK


def _trace(args: argparse.Namespace) -> int:
    store, settings = _store()
    spans = store.trace(args.trace_id)
    if len({s.trace_id for s in spans}) > 1:
        print(f"{args.trace_id!r} matches several traces: give more of the id")
        return EXIT_FAILED
    print(render_waterfall(spans, settings.trace_viewer_url))
    return EXIT_OK if spans else EXIT_FAILED


def _stats(args: argparse.Namespace) -> int:
    store, _ = _store()
    since = time.time_ns() - int(args.minutes * 60e9) if args.minutes else 0
    print(render_stats(store.tool_calls(since)))
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    traces = sub.add_parser("traces", help="list recent traces from the span store ($MESH_HOME/traces.db)")
    traces.add_argument("--last", type=int, default=20, help="how many (default 20)")
    traces.set_defaults(run=_traces)

    trace = sub.add_parser("trace", help="draw one trace as a waterfall")
    trace.add_argument("trace_id", help="trace id, or a unique prefix of it")
    trace.set_defaults(run=_trace)

    stats = sub.add_parser("stats", help="calls, errors and latency per agent and skill")
    stats.add_argument("--minutes", type=float, default=None, help="only the last N minutes")
    stats.set_defaults(run=_stats)
