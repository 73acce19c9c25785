"""Text renderings of the span store for the terminal: trace lists, waterfalls and per-skill stats."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timezone

from tracing.span_store import SpanRow, TraceSummary

__all__ = ["render_stats", "render_trace_list", "render_waterfall"]

_KEY_ATTRIBUTES = (("a2a.task.state", "state"), ("a2a.task.id", "task"), ("error.type", "error"), ("server.address", "server"))
_BAR = 30


def _short(value: object) -> str:
    text = str(value)
    return text.removeprefix("TASK_STATE_").lower().replace("_", "-") if text.startswith("TASK_STATE_") else text


def _clock(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%H:%M:%S")


def render_trace_list(traces: list[TraceSummary]) -> str:
    if not traces:
        return "no traces yet: run something against the mesh (e.g. mesh send URL \"text\")"
    lines = [f"{'trace id':<32}  {'time':<8}  {'root':<32}  {'services':<30}  {'spans':>5}  {'ms':>9}  status"]
    for t in traces:
        lines.append(
            f"{t.trace_id:<32}  {_clock(t.start_ns):<8}  {t.root[:32]:<32}  {','.join(t.services)[:30]:<30}  "
            f"{t.spans:>5}  {t.duration_ms:>9.1f}  {'ERROR' if t.errors else 'ok'}"
        )
    return "\n".join(lines)


def _ordered(spans: list[SpanRow]) -> list[tuple[int, SpanRow]]:
    """Depth-first by start time, so children sit under their parent."""
    ids = {s.span_id for s in spans}
    children: defaultdict[str | None, list[SpanRow]] = defaultdict(list)
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    out: list[tuple[int, SpanRow]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children[parent], key=lambda s: s.start_ns):
            out.append((depth, span))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return out


def render_waterfall(spans: list[SpanRow], viewer_url: str | None = None) -> str:
    if not spans:
        return "no such trace in the span store"
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    trace_id = spans[0].trace_id
    services = sorted({s.service for s in spans})
    lines = [f"trace {trace_id}  {len(spans)} spans  {total / 1e6:.1f} ms  services: {', '.join(services)}", ""]
    width = max(len(s.service) for s in spans)
    for depth, span in _ordered(spans):
        offset = int((span.start_ns - start) / total * _BAR)
        length = max(1, int((span.end_ns - span.start_ns) / total * _BAR))
        bar = " " * offset + "█" * min(length, _BAR - offset)
        name = ("  " * depth + f"{span.name} [{span.kind.lower()}]")[:54]
        status = "ERROR" if span.failed else "ok"
        keys = " ".join(f"{label}={_short(span.attributes[k])}" for k, label in _KEY_ATTRIBUTES if k in span.attributes)
        lines.append(f"{span.service:<{width}}  {name:<54}  |{bar:<{_BAR}}|  {span.duration_ms:>8.1f} ms  {status:<5}  {keys}")
        if span.failed and span.status_message:
            lines.append(f"{'':<{width}}  {'':<54}   {'':<{_BAR}}               ↳ {span.status_message}")
    if viewer_url:
        lines += ["", f"view: {viewer_url.rstrip('/')}/trace/{trace_id}"]
    return "\n".join(lines)


def render_stats(spans: list[SpanRow]) -> str:
    """Requests, errors and latency per agent and skill, from tool-execution spans (``SpanStore.tool_calls``)."""
    groups: defaultdict[tuple[str, str], list[SpanRow]] = defaultdict(list)
    for span in spans:
        if span.attributes.get("gen_ai.operation.name") == "execute_tool" and span.kind in ("INTERNAL", "SERVER"):
            groups[(span.service, str(span.attributes.get("gen_ai.tool.name", "?")))].append(span)
    if not groups:
        return "no skill calls in the span store yet"
    lines = [f"{'agent':<20}  {'skill':<24}  {'calls':>6}  {'errors':>6}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}"]
    for (agent, skill), calls in sorted(groups.items()):
        durations = sorted(c.duration_ms for c in calls)
        p95 = durations[min(len(durations) - 1, int(len(durations) * 0.95))]
        lines.append(
            f"{agent[:20]:<20}  {skill[:24]:<24}  {len(calls):>6}  {sum(c.failed for c in calls):>6}  "
            f"{statistics.median(durations):>8.1f}  {p95:>8.1f}  {durations[-1]:>8.1f}"
        )
    return "\n".join(lines)
