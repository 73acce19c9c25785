"""Contract-net negotiation over real sockets: agents bid, decline or answer late; awards fall back.

Agents run in the test's event loop (``running_agent``); the registry too where one is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracing
from agents.definition import Agent
from agents.negotiation import (
    AwardError,
    Bid,
    CallForProposals,
    Candidate,
    Decline,
    Proposal,
    award,
    call_for_proposals,
    default_bid,
    negotiate,
)
from agents.service import AgentService
from agents.settings import MeshSettings
from protocols.a2a_client import A2AConnection, user_message
from protocols.a2a_results import CallOutcome, outcome_of
from protocols.mesh_extensions import NEGOTIATION, declared_extensions
from protocols.negotiation import cfp_message, parse_answer
from tests.registry.support import card_for, client_for, running_registry
from tests.support import free_port, running_agent

HANG_GUARD = 20  # seconds: only against a hang, never a timing assertion


def weather_agent(name: str) -> Agent:
    agent = Agent(name, "Weather forecasts for any city", version="1.0.0")

    @agent.skill(tags=["weather", "forecast"], examples=["weather in Paris tomorrow"])
    async def forecast(city: str) -> str:
        """Forecast the weather for a city."""
        return f"{name}: sunny in {city}"

    return agent


weather = weather_agent("weather")
pricey = weather_agent("pricey")
pricey.on_bid(lambda cfp: default_bid(pricey, cfp).model_copy(update={"cost": 50.0}))  # type: ignore[union-attr]

shy = weather_agent("shy")


@shy.on_bid
async def _busy(cfp: CallForProposals) -> Decline:
    return Decline(reason="busy with other work")


slow = weather_agent("slow")
slow_release = asyncio.Event()


@slow.on_bid
async def _dawdle(cfp: CallForProposals) -> Bid:
    await slow_release.wait()  # until the test has seen the round end without it
    return Bid(skill="forecast", confidence=1.0)


faulty = weather_agent("faulty")
faulty.on_bid(lambda cfp: 1 / 0)

plain = weather_agent("plain")  # served by us, but its card (as registered) has no negotiation extension

broken = Agent("broken", "Weather forecasts, in theory", version="1.0.0")


@broken.skill(tags=["weather", "forecast"])
async def forecast(city: str) -> str:
    """Forecast the weather for a city."""
    raise RuntimeError("the barometer is broken")


broken.on_bid(lambda cfp: Bid(skill="forecast", confidence=1.0))  # bids best, then fails

gate = asyncio.Event()
busy = Agent("busy", "Slow weather forecasts", version="1.0.0")


@busy.skill(tags=["weather", "forecast"])
async def slow_forecast(city: str) -> str:
    """Forecast the weather for a city, after a while."""
    await gate.wait()
    return f"cloudy in {city}"


def without_negotiation(card: dict) -> dict:
    extensions = [e for e in card["capabilities"]["extensions"] if e["uri"] != NEGOTIATION]
    return {**card, "capabilities": {**card["capabilities"], "extensions": extensions}}


def candidate(service: AgentService, *, negotiating: bool = True, score: float | None = None) -> Candidate:
    card = card_for(service.agent, service.base_url)
    return Candidate(service.agent.name, service.base_url, card if negotiating else without_negotiation(card), score=score)


@contextlib.asynccontextmanager
async def agents(home: Path, *served: Agent) -> AsyncIterator[list[AgentService]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_agent(a, home / a.name, task_store="memory")) for a in served]


async def bid_over(url: str, http: httpx.AsyncClient, binding: str, cfp: dict) -> tuple[dict, Bid | Decline]:
    connection = await A2AConnection.open(url, http, bindings=(binding,))
    events = [event async for event in connection.send(cfp_message(cfp))]
    assert len(events) == 1 and "message" in events[0], events  # a bare message: no task
    answer = parse_answer(events[0])
    return events[0], Bid(**answer.data) if answer.kind == "bid" else Decline(**answer.data)


def forecast_for(http: httpx.AsyncClient, city: str):
    """``perform`` for ``award``: call the bid's skill, or send text to a plain candidate."""

    async def perform(proposal: Proposal) -> CallOutcome:
        connection = await A2AConnection.open(proposal.candidate.url, http)
        if proposal.bid.skill:
            message = user_message(data={"skill": proposal.bid.skill, "arguments": {"city": city}})
        else:
            message = user_message(f"weather forecast for {city}")
        last: dict = {}
        async for event in connection.send(message):
            last = event
        return outcome_of(last)

    return perform


def not_completed(outcome: CallOutcome) -> str | None:
    return None if outcome.state == "completed" else f"task {outcome.state}: {outcome.text}"


async def test_an_agent_answers_a_call_for_proposals_on_both_bindings(tmp_path):
    async with agents(tmp_path, weather, busy) as (service, busy_service), httpx.AsyncClient(timeout=10) as http:
        card = (await http.get(service.base_url + "/.well-known/agent-card.json")).json()
        assert NEGOTIATION in declared_extensions(card)
        for binding in ("JSONRPC", "HTTP+JSON"):
            event, bid = await bid_over(service.base_url, http, binding, {"task": "weather forecast in Oslo"})
            assert isinstance(bid, Bid) and bid.can_handle and bid.skill == "forecast"
            assert 0.5 < bid.confidence < 1 and bid.load == 0
            assert not event["message"].get("taskId")
        _, named = await bid_over(service.base_url, http, "JSONRPC", {"skill": "forecast", "arguments": ["city"]})
        assert isinstance(named, Bid) and named.confidence == 1
        _, missing = await bid_over(service.base_url, http, "JSONRPC", {"skill": "forecast", "arguments": []})
        assert isinstance(missing, Decline) and "city" in missing.reason
        _, unrelated = await bid_over(service.base_url, http, "HTTP+JSON", {"task": "book a flight to Rome"})
        assert isinstance(unrelated, Decline) and "no skill" in unrelated.reason
        _, invalid = await bid_over(service.base_url, http, "JSONRPC", {"deadline_ms": -1})
        assert isinstance(invalid, Decline) and invalid.reason.startswith("invalid call for proposals")

        # load: calls in progress right now; expected_seconds: the skill's recent durations
        async def call_busy() -> CallOutcome:
            return await forecast_for(http, "Oslo")(Proposal(candidate=candidate(busy_service), bid=Bid(skill="slow_forecast", confidence=1)))

        gate.clear()
        running = asyncio.create_task(call_busy())
        for _ in range(200):
            _, loaded = await bid_over(busy_service.base_url, http, "JSONRPC", {"task": "weather forecast"})
            if isinstance(loaded, Bid) and loaded.load == 1:
                break
            await asyncio.sleep(0.02)
        assert isinstance(loaded, Bid) and loaded.load == 1 and loaded.expected_seconds == 0
        gate.set()
        assert (await asyncio.wait_for(running, HANG_GUARD)).state == "completed"
        _, timed = await bid_over(busy_service.base_url, http, "JSONRPC", {"task": "weather forecast"})
        assert isinstance(timed, Bid) and timed.load == 0 and timed.expected_seconds > 0


async def test_bids_are_ranked_overrides_decline_and_plain_agents_come_after_real_bids(tmp_path):
    async with agents(tmp_path, weather, pricey, shy, faulty, plain) as services, httpx.AsyncClient(timeout=10) as http:
        w, p, s, f, pl = services
        dead = f"http://127.0.0.1:{free_port()}"
        ghost = Candidate("ghost", dead, card_for(weather, dead))
        cfp = CallForProposals(task="weather forecast for Oslo")
        proposals = await asyncio.wait_for(
            call_for_proposals([candidate(pl, negotiating=False), candidate(s), candidate(f), candidate(p), candidate(w), ghost],
                               cfp, http),
            HANG_GUARD)
    assert [(x.candidate.name, x.negotiated) for x in proposals] == [("weather", True), ("pricey", True), ("plain", False)]
    assert proposals[0].bid.cost == 0 and proposals[1].bid.cost == 50 and proposals[0].worth > proposals[1].worth
    assert proposals[2].bid.confidence == 0.5 and proposals[2].bid.skill is None
    excluded = {e.agent: e for e in proposals.excluded}
    assert set(excluded) == {"shy", "faulty", "ghost"}
    assert (excluded["shy"].why, excluded["shy"].detail) == ("declined", "busy with other work")
    assert (excluded["faulty"].why, excluded["faulty"].detail) == ("declined", "bidder failed: ZeroDivisionError: division by zero")
    assert excluded["ghost"].why == "error" and "connection attempts failed" in excluded["ghost"].detail


async def test_award_falls_back_when_the_winner_fails_or_is_gone(tmp_path):
    async with agents(tmp_path, broken, weather) as (b, w), httpx.AsyncClient(timeout=10) as http:
        gone_agent = weather_agent("gone")
        gone_agent.on_bid(lambda cfp: Bid(skill="forecast", confidence=0.99))
        async with agents(tmp_path, gone_agent) as (g,):
            proposals = await call_for_proposals([candidate(w), candidate(g), candidate(b)],
                                                 CallForProposals(task="weather forecast"), http)
        assert [x.candidate.name for x in proposals] == ["broken", "gone", "weather"]
        # gone's process has stopped since it bid; broken's skill raises
        won = await asyncio.wait_for(award(proposals, forecast_for(http, "Oslo"), failed=not_completed), HANG_GUARD)
    assert won.winner.candidate.name == "weather" and won.result.output == "weather: sunny in Oslo"
    assert [(a.agent, a.error is None) for a in won.attempts] == [("broken", False), ("gone", False), ("weather", True)]
    assert "barometer is broken" in (won.attempts[0].error or "")
    assert "Connect" in (won.attempts[1].error or "")


async def test_when_every_attempt_fails_the_error_names_each(tmp_path):
    async with agents(tmp_path, broken, weather, shy) as (b, w, s), httpx.AsyncClient(timeout=10) as http:
        proposals = await call_for_proposals([candidate(b), candidate(w), candidate(s)], CallForProposals(task="weather"), http)

        async def refuse(proposal: Proposal) -> CallOutcome:
            outcome = await forecast_for(http, "Oslo")(proposal)
            return outcome if proposal.candidate.name == "broken" else CallOutcome("rejected", text="not today")

        with pytest.raises(AwardError) as raised:
            await asyncio.wait_for(award(proposals, refuse, failed=not_completed), HANG_GUARD)
    message = str(raised.value)
    assert f"broken at {b.base_url}: task failed: RuntimeError: the barometer is broken" in message
    assert f"weather at {w.base_url}: task rejected: not today" in message
    assert f"shy at {s.base_url} declined: busy with other work" in message
    assert [a.agent for a in raised.value.attempts] == ["broken", "weather"]
    with pytest.raises(AwardError, match="no proposals to try"):
        await award([], forecast_for(http, "Oslo"))


async def test_a_late_bidder_is_excluded_at_the_deadline(tmp_path):
    async with agents(tmp_path, slow, weather) as (sl, w), httpx.AsyncClient(timeout=10) as http:
        cfp = CallForProposals(task="weather forecast", deadline_ms=1000)
        try:
            proposals = await asyncio.wait_for(call_for_proposals([candidate(sl), candidate(w)], cfp, http), HANG_GUARD)
        finally:
            slow_release.set()
    assert [x.candidate.name for x in proposals] == ["weather"]
    (late,) = proposals.excluded
    assert (late.agent, late.why, late.detail) == ("slow", "late", "no answer within 1 s")


async def test_negotiate_finds_candidates_in_the_registry_and_traces_the_round(tmp_path):
    spans = InMemorySpanExporter()
    setup = tracing.configure("negotiation-tests", MeshSettings.from_env({}, home=tmp_path))
    if setup.tracer_provider is None:
        pytest.skip("tracing is disabled in this environment")
    setup.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    try:
        async with (running_registry(tmp_path, f"sqlite:///{tmp_path / 'registry.db'}") as registry,
                    client_for(registry) as client, agents(tmp_path, weather, shy, plain) as (w, s, pl),
                    httpx.AsyncClient(timeout=10) as http):
            for service in (w, s):
                await client.register(card=card_for(service.agent, service.base_url))
            await client.register(card=without_negotiation(card_for(plain, pl.base_url)))
            won = await asyncio.wait_for(
                negotiate(client, "weather forecast", forecast_for(http, "Oslo"), failed=not_completed, exclude=["nobody"]),
                HANG_GUARD)
            assert won.winner.candidate.name == "weather" and won.result.output == "weather: sunny in Oslo"
            assert won.winner.candidate.score is not None
            everyone_else = await asyncio.wait_for(
                negotiate(client, "weather forecast", forecast_for(http, "Oslo"), failed=not_completed,
                          exclude=["weather"], http=http),
                HANG_GUARD)
            assert everyone_else.winner.candidate.name == "plain" and not everyone_else.winner.negotiated
            assert 0 < everyone_else.winner.bid.confidence <= 0.5  # scaled by its search score
    finally:
        spans.shutdown()
    finished = spans.get_finished_spans()
    rounds = [x for x in finished if x.name == "negotiate"]
    assert len(rounds) == 2
    first = rounds[0]
    assert first.attributes["mesh.negotiation.candidates"] == 3
    assert first.attributes["mesh.negotiation.bids"] == 1 and first.attributes["mesh.negotiation.declines"] == 1
    assert first.attributes["mesh.negotiation.winner"] == "weather"
    children = [x.name for x in finished if x.parent is not None and x.parent.span_id == first.context.span_id]
    assert sorted(children) == ["invoke_agent shy", "invoke_agent weather"]
    awards = [x for x in finished if x.name == "award"]
    assert [a.attributes["mesh.negotiation.winner"] for a in awards] == ["weather", "plain"]
