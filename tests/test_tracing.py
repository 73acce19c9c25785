"""One user request is one connected trace across real processes, named by the conventions."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import A2A_HEADERS, ROOT, AgentProcess, free_port, rpc, skill_message
from tracing.span_store import SpanRow, SpanStore


@pytest.fixture(scope="module")
def traced_mesh(tmp_path_factory):
    """Three processes: `mesh send` (the client) → frontdesk → testbench over A2A (streaming) and MCP.

    Every process exports to the embedded span store of the shared MESH_HOME.
    """
    home = tmp_path_factory.mktemp("traced")
    backend = AgentProcess("tests.agents_under_test:agent", home).start()
    frontdesk = AgentProcess("tests.tracing_agents:frontdesk", home, env={"BACKEND_URL": backend.url}).start()
    try:
        sent = subprocess.run(
            [sys.executable, "-m", "agents.cli", "send", frontdesk.url, "--skill", "relay", "--data", '{"text": "hi"}', "--json"],
            cwd=ROOT, env={**os.environ, "MESH_HOME": str(home)}, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        task = json.loads(sent.stdout.splitlines()[-1])["task"]
    finally:
        frontdesk.stop()
        backend.stop()  # a clean stop flushes each process's batch of spans
    yield home, task


def spans_of(home, task) -> list[SpanRow]:
    store = SpanStore(home / "traces.db")
    for _ in range(50):
        traces = {summary.trace_id for summary in store.recent(50)}
        rows = [row for trace_id in traces for row in store.trace(trace_id) if row.attributes.get("a2a.task.id") == task["id"]]
        if rows:
            return store.trace(rows[0].trace_id)
        time.sleep(0.1)
    raise AssertionError("the request's spans never reached the store")


def test_the_request_is_one_connected_trace(traced_mesh):
    home, task = traced_mesh
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["data"] == {"echo": "hi", "sum": "5"}
    spans = spans_of(home, task)
    assert len({s.trace_id for s in spans}) == 1
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id is None]
    assert [r.name for r in roots] == ["invoke_agent frontdesk"], "exactly one root: the client's call"
    orphans = [s.name for s in spans if s.parent_id is not None and s.parent_id not in ids]
    assert orphans == []
    assert {s.service for s in spans} == {"mesh-cli", "frontdesk", "testbench"}


def test_names_kinds_and_attributes_follow_the_conventions(traced_mesh):
    home, task = traced_mesh
    spans = spans_of(home, task)
    by = {(s.service, s.kind, s.name): s for s in spans}
    expected = {
        ("mesh-cli", "CLIENT", "invoke_agent frontdesk"),
        ("mesh-cli", "CLIENT", "SendMessage"),
        ("frontdesk", "SERVER", "SendMessage"),
        ("frontdesk", "INTERNAL", "invoke_agent frontdesk"),
        ("frontdesk", "INTERNAL", "execute_tool relay"),
        ("frontdesk", "CLIENT", "invoke_agent testbench"),
        ("frontdesk", "CLIENT", "SendStreamingMessage"),
        ("testbench", "SERVER", "SendStreamingMessage"),
        ("testbench", "INTERNAL", "invoke_agent testbench"),
        ("testbench", "INTERNAL", "execute_tool echo"),
        ("frontdesk", "CLIENT", "tools/call add"),
        ("testbench", "SERVER", "tools/call add"),  # the mcp SDK's span is the tool's execution span
    }
    assert expected <= set(by), sorted(expected - set(by))
    parent = {s.span_id: s for s in spans}
    # the hops nest as the calls did
    assert parent[by[("testbench", "SERVER", "SendStreamingMessage")].parent_id].name == "SendStreamingMessage"
    assert parent[by[("testbench", "SERVER", "tools/call add")].parent_id].name == "tools/call add"
    tool_call = by[("testbench", "SERVER", "tools/call add")].attributes
    assert tool_call["gen_ai.operation.name"] == "execute_tool" and tool_call["gen_ai.tool.name"] == "add"
    assert parent[by[("frontdesk", "INTERNAL", "execute_tool relay")].parent_id].name == "invoke_agent frontdesk"
    for span in spans:
        a = span.attributes
        if span.name.startswith("invoke_agent "):
            assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.provider.name"] == "agent-mesh"
            assert a["gen_ai.agent.name"] == span.name.split(" ", 1)[1] and a["gen_ai.agent.version"]
        if span.name.startswith("execute_tool "):
            assert a["gen_ai.operation.name"] == "execute_tool" and a["gen_ai.tool.name"] == span.name.split(" ", 1)[1]
        if span.name in ("SendMessage", "SendStreamingMessage"):
            assert a["a2a.method.name"] == span.name and a["a2a.protocol.version"] == "1.0"
            assert a["a2a.task.id"] and a["a2a.task.state"].startswith("TASK_STATE_")
        if span.name.startswith("tools/call "):
            assert a["mcp.method.name"] == "tools/call" and a["gen_ai.tool.name"] == "add"
    server = by[("frontdesk", "SERVER", "SendMessage")].attributes
    assert server["gen_ai.conversation.id"] == task["contextId"] and server["a2a.task.state"] == "TASK_STATE_COMPLETED"


def test_message_contents_are_not_recorded_by_default(traced_mesh):
    home, task = traced_mesh
    for span in spans_of(home, task):
        assert not any(k.startswith("gen_ai.tool.call.arguments") or k == "gen_ai.tool.call.result" for k in span.attributes)


class OtlpReceiver:
    """A minimal OTLP/HTTP collector: decodes every ExportTraceServiceRequest it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[tuple[str, str]] = []  # (service, span name)
        self.metric_names: set[str] = set()

    @staticmethod
    async def _payload(request: Request) -> bytes:
        body = await request.body()
        return gzip.decompress(body) if request.headers.get("content-encoding") == "gzip" else body

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await self._payload(request))
        for resource_spans in export.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                self.spans.extend((service, span.name) for span in scope.spans)
        return Response(b"", media_type="application/x-protobuf")

    async def metrics(self, request: Request) -> Response:
        export = ExportMetricsServiceRequest.FromString(await self._payload(request))
        for resource_metrics in export.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                self.metric_names.update(metric.name for metric in scope.metrics)
        return Response(b"", media_type="application/x-protobuf")


async def test_an_otlp_http_receiver_gets_the_spans(tmp_path):
    receiver = OtlpReceiver()
    app = Starlette(routes=[Route("/v1/traces", receiver.traces, methods=["POST"]), Route("/v1/metrics", receiver.metrics, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_SERVICE_NAME": "otlp-bench",
           "OTEL_METRIC_EXPORT_INTERVAL": "300"}
    agent = await asyncio.to_thread(AgentProcess("tests.agents_under_test:agent", tmp_path, env=env).start)
    try:
        async with httpx.AsyncClient(headers=A2A_HEADERS) as http:
            await http.post(agent.url + "/", json=rpc("SendMessage", {"message": skill_message("add", {"a": 1, "b": 1}, "otlp-1")}))
        for _ in range(100):
            if ("otlp-bench", "execute_tool add") in receiver.spans and "mesh.skill.duration" in receiver.metric_names:
                break
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(agent.stop)
        server.should_exit = True
        await serving
    assert {("otlp-bench", "SendMessage"), ("otlp-bench", "invoke_agent testbench"), ("otlp-bench", "execute_tool add")} <= set(receiver.spans)
    assert {"mesh.skill.duration", "mesh.skill.in_flight"} <= receiver.metric_names
    assert SpanStore(tmp_path / "traces.db").recent(5), "the embedded store keeps working alongside OTLP"


async def test_a_dead_collector_slows_nothing_down(tmp_path):
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    agent = await asyncio.to_thread(AgentProcess("tests.agents_under_test:agent", tmp_path, env=env).start)
    try:
        async with httpx.AsyncClient(headers=A2A_HEADERS) as http:
            started = time.monotonic()
            for i in range(10):
                response = await http.post(agent.url + "/", json=rpc("SendMessage", {"message": skill_message("add", {"a": i, "b": 1}, f"dead-{i}")}))
                assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            elapsed = time.monotonic() - started
    finally:
        stop_started = time.monotonic()
        code = await asyncio.to_thread(agent.stop)
        stop_time = time.monotonic() - stop_started
    assert code == 0
    assert elapsed < 10, f"10 requests took {elapsed:.1f}s with a dead collector"
    assert stop_time < 9, f"shutdown took {stop_time:.1f}s with a dead collector"


def test_the_backoff_guard_stops_calling_a_dead_exporter_and_recovers():
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from tracing.exporters import BackoffExporter

    class Flaky(SpanExporter):
        def __init__(self) -> None:
            self.calls, self.up = 0, False

        def export(self, spans):
            self.calls += 1
            return SpanExportResult.SUCCESS if self.up else SpanExportResult.FAILURE

    inner = Flaky()
    guard = BackoffExporter(inner, first=0.2, longest=0.4)
    assert guard.export([]) is SpanExportResult.FAILURE and inner.calls == 1
    for _ in range(20):  # inside the back-off: dropped without touching the collector
        assert guard.export([]) is SpanExportResult.FAILURE
    assert inner.calls == 1
    time.sleep(0.25)
    inner.up = True
    assert guard.export([]) is SpanExportResult.SUCCESS and inner.calls == 2


def test_mesh_traces_trace_and_stats_read_the_store(traced_mesh):
    home, task = traced_mesh
    env = {**os.environ, "MESH_HOME": str(home), "MESH_TRACE_VIEWER_URL": "http://127.0.0.1:16686"}
    trace_id = spans_of(home, task)[0].trace_id

    def mesh(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = mesh("traces", "--last", "5")
    assert any(line.startswith(trace_id) and "invoke_agent frontdesk" in line and "frontdesk,mesh-cli,testbench" in line
               for line in listed.splitlines())
    waterfall = mesh("trace", trace_id[:10]).splitlines()
    assert waterfall[0].startswith(f"trace {trace_id}") and "services: frontdesk, mesh-cli, testbench" in waterfall[0]
    rows = [line for line in waterfall[2:] if "|" in line]
    assert rows[0].startswith("mesh-cli") and "invoke_agent frontdesk [client]" in rows[0] and "state=completed" in rows[0]
    assert any(row.startswith("testbench") and "tools/call add [server]" in row for row in rows)
    assert waterfall[-1] == f"view: http://127.0.0.1:16686/trace/{trace_id}"
    stats = mesh("stats")
    assert any(line.split()[:3] == ["frontdesk", "relay", "1"] for line in stats.splitlines())
    assert any(line.split()[:2] == ["testbench", "add"] for line in stats.splitlines())


async def test_a_resumed_task_links_to_where_it_started_and_content_is_redacted(tmp_path):
    env = {"MESH_TRACE_CONTENT": "true"}
    agent = await asyncio.to_thread(AgentProcess("tests.agents_under_test:agent", tmp_path, env=env).start)
    try:
        async with httpx.AsyncClient(headers=A2A_HEADERS, timeout=30) as http:
            first = (await http.post(agent.url + "/", json=rpc("SendMessage", {"message": skill_message("survey", {}, "link-1")}))).json()
            task = first["result"]["task"]
            ids = {"taskId": task["id"]}
            for i, answer in enumerate(["teal", "otter"]):
                await http.post(agent.url + "/", json=rpc("SendMessage", {"message": {
                    "messageId": f"link-{i + 2}", "role": "ROLE_USER", "parts": [{"text": answer}], **ids}}))
            await http.post(agent.url + "/", json=rpc("SendMessage", {"message": skill_message("echo", {"text": "token: Bearer abcdefghijklmnop"}, "secret-1")}))
    finally:
        await asyncio.to_thread(agent.stop)
    store = SpanStore(tmp_path / "traces.db")
    spans = [s for t in store.recent(20) for s in store.trace(t.trace_id)]
    sends = [s for s in spans if s.name == "SendMessage" and s.attributes.get("a2a.task.id") == task["id"]]
    origin = next(s for s in sends if s.attributes.get("a2a.message.id") == "link-1")
    resumed = [s for s in sends if s.attributes.get("a2a.message.id") in ("link-2", "link-3")]
    assert len(resumed) == 2 and all(s.trace_id != origin.trace_id for s in resumed)
    invoke = next(s for s in spans if s.trace_id == origin.trace_id and s.name == "invoke_agent testbench")
    assert all({"trace_id": origin.trace_id, "span_id": invoke.span_id} in s.links for s in resumed)
    echo = next(s for s in spans if s.name == "execute_tool echo")
    assert "Bearer abcdefghijklmnop" not in json.dumps(echo.attributes)
    assert "[REDACTED]" in echo.attributes["gen_ai.tool.call.arguments"]


def test_redaction_masks_secret_keys_and_secret_looking_values():
    from tracing.redaction import MASK, redact

    masked = redact({"password": "hunter2", "nested": [{"api_key": "k", "city": "Oslo"}],
                     "note": "use Bearer abcdefghijklmnop or sk-abcdefghijklmnopqrstu", "Authorization": "x"})
    assert masked == {"password": MASK, "nested": [{"api_key": MASK, "city": "Oslo"}],
                      "note": f"use {MASK} or {MASK}", "Authorization": MASK}
