"""The LLM planner against a local fake OpenAI-compatible server (tests/fake_llm.py), over real HTTP."""

from __future__ import annotations

import json
import logging
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tracing
import tracing.setup
from agents.coordination.catalog import AgentInfo, SkillInfo
from agents.coordination.llm_planner import LLMPlanner
from agents.settings import MeshSettings
from tests.fake_llm import FakeLLM, Reply
from tests.support import free_port

MODEL = "fake-model"
KEY = "sk-test-abcdefghijklmnop"


def agent(name: str, description: str, **skills: dict) -> AgentInfo:
    infos = {s: SkillInfo(s, s, f"{s} for {name}", (), {"type": "object", "properties": props,
                                                          "required": list(props)[:1]})
             for s, props in skills.items()}
    return AgentInfo(id=f"{name}-id", name=name, description=description, card={}, skills=infos,
                     urls=(f"http://{name}.invalid",))


AGENTS = [
    agent("intent", "Works out what the customer wants", classify={"text": {"type": "string"}}),
    agent("knowledge", "Answers from the knowledge base", search={"query": {"type": "string"}}),
    agent("ticketing", "Opens and tracks tickets",
          open_ticket={"summary": {"type": "string"}, "customer_id": {"type": "string"}}),
]

GOOD = {
    "steps": [
        {"id": "find", "agent": "knowledge", "skill": "search", "arguments": {"query": "refund policy"},
         "depends_on": []},
        {"id": "ticket", "agent": "ticketing", "skill": "open_ticket", "arguments": {}, "depends_on": ["find"]},
    ],
    "answer": "Your ticket {ticket_id} is open.",
}


@pytest.fixture
async def llm():
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def planner(llm):
    async with LLMPlanner(llm.base_url, MODEL, timeout=5) as p:
        yield p


async def test_a_good_plan_is_parsed_and_validated(llm, planner):
    llm.script(Reply.json(GOOD))
    outcome = await planner.plan("I want my money back", AGENTS, facts={"customer_id": "C-42", "_escalated": True})
    assert outcome.kind == "planned" and outcome.ok and outcome.calls == 1
    assert [(s.id, s.agent, s.skill, s.depends_on) for s in outcome.plan.steps] == [
        ("find", "knowledge", "search", []), ("ticket", "ticketing", "open_ticket", ["find"])]
    assert outcome.plan.steps[0].arguments == {"query": "refund policy"}
    assert outcome.plan.answer == "Your ticket {ticket_id} is open."

    [sent] = llm.requests
    assert sent.body["model"] == MODEL and sent.body["response_format"] == {"type": "json_object"}
    assert sent.last_user == "I want my money back"
    for shown in ("intent", "classify", "knowledge", "search", "ticketing", "open_ticket", "customer_id"):
        assert shown in sent.system
    assert "C-42" not in json.dumps(sent.body), "facts' values never leave the mesh"
    assert "_escalated" not in sent.system
    assert "authorization" not in sent.headers, "no key configured: no header"


async def test_fenced_json_with_prose_is_accepted(llm, planner):
    llm.script(Reply.fenced(GOOD))
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "planned" and len(outcome.plan.steps) == 2


async def test_an_invalid_plan_is_repaired_once(llm, planner):
    cyclic = {"steps": [{"id": "a", "agent": "intent", "skill": "classify", "depends_on": ["b"]},
                        {"id": "b", "agent": "knowledge", "skill": "search", "depends_on": ["a"]}]}
    llm.script(Reply.json(cyclic), Reply.json(GOOD))
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "planned" and outcome.calls == 2
    first, second = llm.requests
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[2]["content"] == json.dumps(cyclic), "the model sees its own answer"
    assert "cycle" in second.last_user, "and what was wrong with it"


async def test_garbage_twice_is_no_plan_with_the_reason(llm, planner):
    llm.script("Sure! I'd love to help with that.", Reply.json(["not", "an", "object"]))
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "invalid" and outcome.plan is None and outcome.calls == 2
    assert "after one repair" in outcome.reason and "JSON object" in outcome.reason
    assert len(llm.requests) == 2, "one repair round-trip at most"


async def test_unknown_agent_is_repaired_and_unknown_skill_is_named(llm, planner):
    wrong_agent = {"steps": [{"id": "bill", "agent": "billing", "skill": "refund"}]}
    llm.script(Reply.json(wrong_agent), Reply.json(GOOD))
    repaired = await planner.plan("refund please", AGENTS)
    assert repaired.kind == "planned"
    assert "unknown agent 'billing'" in llm.requests[1].last_user
    assert "ticketing" in llm.requests[1].last_user, "the repair lists the agents that exist"

    wrong_skill = {"steps": [{"id": "t", "agent": "ticketing", "skill": "close_ticket"}]}
    llm.script(Reply.json(wrong_skill), Reply.json(wrong_skill))
    outcome = await planner.plan("close my ticket", AGENTS)
    assert outcome.kind == "invalid"
    assert "no skill 'close_ticket'" in outcome.reason and "open_ticket" in outcome.reason


async def test_a_bad_answer_template_is_repaired(llm, planner):
    llm.script(Reply.json({**GOOD, "answer": "Ticket {steps[0]} is {"}), Reply.json(GOOD))
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "planned" and "answer" in llm.requests[1].last_user


async def test_the_model_declining_is_no_plan_without_repair(llm, planner):
    llm.script(Reply.json({"steps": [], "reason": "No agent books flights."}))
    outcome = await planner.plan("book me a flight to Oslo", AGENTS)
    assert outcome.kind == "declined" and "No agent books flights." in outcome.reason
    assert len(llm.requests) == 1


async def test_a_truncated_answer_says_so(llm, planner):
    cut = Reply('{"steps": [{"id": "find", "agent": "know', finish_reason="length")
    llm.script(cut, cut)
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "invalid" and "token limit" in outcome.reason


async def test_endpoint_errors_are_no_plan_and_quick(llm, planner):
    llm.script(Reply.failure(500))
    started = time.monotonic()
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "unavailable" and "HTTP 500" in outcome.reason and "had an error" in outcome.reason
    assert len(llm.requests) == 1, "a server error is not retried"

    llm.script(Reply(raw_body="<html>bad gateway</html>"))
    outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "unavailable" and "not a chat completion" in outcome.reason

    async with LLMPlanner(f"http://127.0.0.1:{free_port()}/v1", MODEL, timeout=5) as nowhere:
        down = await nowhere.plan("refund please", AGENTS)
    assert down.kind == "unavailable" and "cannot reach" in down.reason
    assert time.monotonic() - started < 10  # hang guard


async def test_a_slow_endpoint_times_out(llm):
    llm.script(Reply.slow(30))
    started = time.monotonic()
    async with LLMPlanner(llm.base_url, MODEL, timeout=0.5) as planner:
        outcome = await planner.plan("refund please", AGENTS)
    assert outcome.kind == "timeout" and outcome.plan is None
    assert time.monotonic() - started < 10  # hang guard: nowhere near the 30 s reply


async def test_json_mode_refused_with_400_is_dropped(llm, planner):
    def respond(request):
        if "response_format" in request.body:
            return Reply.failure(400, "'response_format.type' must be 'json_schema'")
        return Reply.json(GOOD)

    llm.respond = respond
    assert (await planner.plan("refund please", AGENTS)).kind == "planned"
    assert (await planner.plan("refund please", AGENTS)).kind == "planned"
    assert ["response_format" in r.body for r in llm.requests] == [True, False, False], "asked once, then remembered"


async def test_no_agents_means_no_call(llm, planner):
    outcome = await planner.plan("anything", [])
    assert outcome.kind == "skipped" and llm.requests == []


async def test_settings_and_the_api_key(caplog):
    assert LLMPlanner.from_settings(MeshSettings.from_env({})) is None
    assert LLMPlanner.from_settings(MeshSettings.from_env({"MESH_LLM_BASE_URL": "http://x/v1"})) is None
    caplog.set_level(logging.DEBUG)
    async with FakeLLM(api_key=KEY) as llm:
        env = {"MESH_LLM_BASE_URL": llm.base_url, "MESH_LLM_MODEL": MODEL, "MESH_LLM_API_KEY": KEY,
               "MESH_LLM_TIMEOUT_SECONDS": "5"}
        planner = LLMPlanner.from_settings(MeshSettings.from_env(env))
        assert planner is not None and planner.timeout == 5 and KEY not in repr(planner)
        llm.script(Reply.json(GOOD))
        async with planner:
            assert (await planner.plan("refund please", AGENTS)).kind == "planned"
        assert llm.requests[0].headers["authorization"] == f"Bearer {KEY}"

        async with LLMPlanner(llm.base_url, MODEL, api_key="sk-wrong-key-0000000000") as wrong:
            refused = await wrong.plan("refund please", AGENTS)
        assert refused.kind == "unavailable" and "HTTP 401" in refused.reason
    assert KEY not in caplog.text and "sk-wrong-key" not in caplog.text


@pytest.fixture
def spans(monkeypatch):
    """Spans of this test, from the process's tracer provider (set up here when no test did yet)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        tracing.configure("tests", MeshSettings.from_env({}, trace_store=False))
        provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        pytest.skip("tracing is disabled in this process (OTEL_SDK_DISABLED)")
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()  # the provider keeps it, but it records nothing more


async def test_the_chat_call_is_a_genai_client_span(spans, llm, planner):
    llm.model_version = "fake-model-2026-01-01"
    llm.script(Reply.json(GOOD))
    await planner.plan("refund please, my key is sk-live-abcdefghijklmnop", AGENTS)
    [span] = [s for s in spans.get_finished_spans() if s.name == f"chat {MODEL}"]
    attributes = dict(span.attributes)
    assert span.kind is SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == "fake-model-2026-01-01"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["server.address"] == "127.0.0.1" and attributes["server.port"] == llm.port
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes
    traceparent = llm.requests[0].headers["traceparent"]
    assert traceparent.split("-")[2] == format(span.context.span_id, "016x"), "the call carries the chat span"


async def test_content_is_recorded_only_when_asked_and_redacted(spans, llm, planner, monkeypatch):
    monkeypatch.setattr(tracing.setup, "_current", tracing.setup.Tracing("tests", True, record_content=True))
    llm.script(Reply.failure(503, "overloaded"))
    assert (await planner.plan("my key is sk-live-abcdefghijklmnop", AGENTS)).kind == "unavailable"
    llm.script(Reply.json(GOOD))
    assert (await planner.plan("my key is sk-live-abcdefghijklmnop", AGENTS)).kind == "planned"
    failed, recorded = [s for s in spans.get_finished_spans() if s.name == f"chat {MODEL}"]
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "503"
    sent = json.loads(recorded.attributes["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["system", "user"]
    assert "[REDACTED]" in sent[1]["parts"][0]["content"] and "sk-live" not in json.dumps(sent)
    assert json.loads(recorded.attributes["gen_ai.output.messages"])[0]["finish_reason"] == "stop"
