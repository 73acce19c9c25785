"""Contract-net negotiation: ask candidate agents for bids, award the work to the best, fall back.

Bidder side (every agent on this runtime, see ``protocols.a2a_executor``): :func:`answer_cfp`
answers a call for proposals with the agent's ``@agent.on_bid`` function or :func:`default_bid`.

Caller side (the coordinator or any peer): :func:`call_for_proposals` asks candidates concurrently
and ranks what came back, :func:`award` tries the best proposal and falls back to the next, and
:func:`negotiate` does both for candidates found by the registry's text search. Agents whose card
does not declare the negotiation extension are plain candidates. Wire format, ranking and how to
override the bid: docs/negotiation.md.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator

from agents.definition import Agent
from agents.errors import describe_exception
from agents.routing import rank_skills
from agents.runtime import workload
from protocols.a2a_client import A2AConnection
from protocols.card_signing import CardTrust
from protocols.cards import parse_card
from protocols.negotiation import cfp_message, negotiates, parse_answer
from protocols.registry_client import RegistryClient
from registry.models import AgentRecord
from registry.records import instance_url_of
from tracing import content_recording
from tracing.conventions import record_error, tracer
from tracing.propagation import traced_httpx
from tracing.redaction import redacted_json

__all__ = [
    "Attempt", "Award", "AwardError", "Bid", "CallForProposals", "Candidate", "Decline", "Exclusion",
    "Proposal", "Proposals", "answer_cfp", "award", "call_for_proposals", "default_bid", "negotiate", "rank",
    "worth",
]

log = logging.getLogger("agents.negotiation")
T = TypeVar("T")

DEFAULT_DEADLINE_MS = 2000
# Default bid: routing score s (agents.routing.rank_skills) → confidence s / (s + CONFIDENCE_HALF_SCORE),
# so one matching tag or skill-id word (3.0) is 0.5, two are 0.67, one description word (1.0) is 0.25.
CONFIDENCE_HALF_SCORE = 3.0
# A candidate that cannot bid: this confidence, scaled by its registry search score relative to the
# best score among all candidates (the stores rank on different scales); this value when no score.
PLAIN_CONFIDENCE = 0.5
# Ranking: worth = confidence − Σ weight·x/(x + scale) over load, expected seconds and cost. Each
# penalty stays below its weight, so confidence comes first: a lead of more than 0.2 always wins.
LOAD_WEIGHT, LOAD_SCALE = 0.10, 4.0  # 4 calls in progress cost 0.05
TIME_WEIGHT, TIME_SCALE = 0.05, 10.0  # 10 s expected cost 0.025
COST_WEIGHT, COST_SCALE = 0.05, 1.0  # 1 unit costs 0.025

# span attributes of a negotiation round and of an award
CANDIDATES, BIDS, DECLINES, EXCLUDED, WINNER, ATTEMPTS, TASK = (
    "mesh.negotiation.candidates", "mesh.negotiation.bids", "mesh.negotiation.declines", "mesh.negotiation.excluded",
    "mesh.negotiation.winner", "mesh.negotiation.attempts", "mesh.negotiation.task")


class CallForProposals(BaseModel):
    """What the caller needs: free text, or a skill id, or both."""

    task: str = Field(default="", description="What is needed, in words.")
    skill: str | None = Field(default=None, description="The skill id the caller wants, if it knows one.")
    arguments: list[str] | None = Field(default=None, description="Names of the arguments the caller can provide.")
    deadline_ms: int = Field(default=DEFAULT_DEADLINE_MS, gt=0, le=600_000, description="Bids later than this are ignored.")

    @model_validator(mode="after")
    def _says_what(self) -> CallForProposals:
        if not self.task.strip() and not self.skill:
            raise ValueError("a call for proposals needs a task or a skill")
        return self


class Bid(BaseModel):
    can_handle: bool = True
    skill: str | None = Field(default=None, description="The skill that would do the work.")
    confidence: float = Field(ge=0, le=1)
    cost: float = Field(default=0.0, ge=0, description="In units the agent defines.")
    expected_seconds: float = Field(default=0.0, ge=0)
    load: int = Field(default=0, ge=0, description="Calls in progress at the bidder.")


class Decline(BaseModel):
    reason: str


# -- bidder side -------------------------------------------------------------------------------


def default_bid(agent: Agent, cfp: CallForProposals) -> Bid | Decline:
    """A known ``cfp.skill`` bids with confidence 1; else the best skill by words (``rank_skills``).

    A named skill whose required arguments are not all among ``cfp.arguments`` (when given) declines.
    """
    skill = agent.skills.get(cfp.skill) if cfp.skill else None
    if skill is not None:
        confidence = 1.0
        missing = [a for a in skill.required_arguments if cfp.arguments is not None and a not in cfp.arguments]
        if missing:
            return Decline(reason=f"skill {skill.id!r} needs arguments the caller cannot give: {', '.join(missing)}")
    else:
        ranked = rank_skills(agent, cfp.task) if cfp.task else []
        if not ranked:
            unknown = f"no skill {cfp.skill!r}; " if cfp.skill else ""
            return Decline(reason=f"{unknown}no skill of agent {agent.name!r} matches the task")
        score, skill = ranked[0]
        confidence = score / (score + CONFIDENCE_HALF_SCORE)
    return Bid(
        skill=skill.id,
        confidence=round(confidence, 4),
        load=workload.running.get(agent.name, 0),
        expected_seconds=workload.expected_seconds(agent.name, skill.id),
    )


async def answer_cfp(agent: Agent, cfp: dict[str, Any]) -> Bid | Decline:
    """The agent's answer to a call for proposals (JSON form): its ``on_bid`` function, else the default.

    An invalid call, or a bidder that raises or returns something else, is answered with a decline.
    """
    try:
        call = CallForProposals.model_validate(cfp)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'cfp'}: {e['msg']}" for e in exc.errors())
        return Decline(reason=f"invalid call for proposals: {problems}")
    if agent.bidder is None:
        return default_bid(agent, call)
    try:
        answer = agent.bidder(call)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:
        log.exception("bidder of agent %s raised", agent.name)
        return Decline(reason=f"bidder failed: {describe_exception(exc)}")
    if not isinstance(answer, (Bid, Decline)):
        return Decline(reason=f"bidder returned {type(answer).__name__}, not a Bid or a Decline")
    return answer


# -- caller side -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """One agent instance that may do the work: where it is, its card, what the registry knows."""

    name: str
    url: str
    card: dict[str, Any]
    agent_id: str | None = None
    score: float | None = None  # the registry's text-search rank (higher is better), when found by text
    in_flight: int = 0  # as the instance last reported to the registry

    @property
    def negotiates(self) -> bool:
        return negotiates(self.card)

    @classmethod
    def from_record(cls, record: AgentRecord) -> list[Candidate]:
        """One candidate per healthy instance of an A2A agent: each replica bids for itself."""
        if record.kind != "a2a":
            return []
        return [cls(record.name, i.url, record.card, record.id, record.score, i.in_flight) for i in record.healthy]

    def __str__(self) -> str:
        return f"{self.name} at {self.url}"


class Proposal(BaseModel):
    """A candidate with its bid; ``negotiated`` is False for a plain candidate (no real bid)."""

    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    bid: Bid
    negotiated: bool = True

    @computed_field  # type: ignore[prop-decorator]
    @property
    def worth(self) -> float:
        return worth(self.bid)


class Exclusion(BaseModel):
    """A candidate left out of a round, and why."""

    agent: str
    url: str
    why: Literal["declined", "late", "error"]
    detail: str

    def __str__(self) -> str:
        return f"{self.agent} at {self.url} {self.why}: {self.detail}"


class Proposals(list[Proposal]):
    """Proposals, best first; ``excluded`` lists who declined, answered late or failed, and why."""

    def __init__(self, proposals: Iterable[Proposal] = (), excluded: Iterable[Exclusion] = ()) -> None:
        super().__init__(proposals)
        self.excluded = list(excluded)


def _saturate(value: float, scale: float) -> float:
    return value / (value + scale) if value > 0 else 0.0


def worth(bid: Bid) -> float:
    """How good a bid is: its confidence less bounded penalties for load, expected time and cost."""
    return (bid.confidence - LOAD_WEIGHT * _saturate(bid.load, LOAD_SCALE)
            - TIME_WEIGHT * _saturate(bid.expected_seconds, TIME_SCALE) - COST_WEIGHT * _saturate(bid.cost, COST_SCALE))


def rank(proposals: Iterable[Proposal]) -> list[Proposal]:
    """Best first: by worth; at equal worth real bids before plain candidates, then less load, time, cost."""
    return sorted(proposals, key=lambda p: (-round(p.worth, 9), not p.negotiated, p.bid.load,
                                            p.bid.expected_seconds, p.bid.cost, p.candidate.name, p.candidate.url))


async def _connection(candidate: Candidate, http: httpx.AsyncClient, trust: CardTrust | None) -> A2AConnection:
    """From the registry's card when it describes this instance; else the instance's own card.
    Either way ``trust`` judges the card: the registry's copy is checked again, not taken on faith."""
    if instance_url_of(candidate.card) == candidate.url.rstrip("/"):
        if trust is not None:
            trust.check(candidate.card, f"{candidate.url} (as registered)")
        return A2AConnection(card=parse_card(candidate.card), http=http)
    return await A2AConnection.open(candidate.url, http, trust=trust)


async def _ask(candidate: Candidate, cfp: CallForProposals, http: httpx.AsyncClient,
               trust: CardTrust | None) -> Bid | Decline:
    connection = await _connection(candidate, http, trust)
    last: dict[str, Any] = {}
    async for event in connection.send(cfp_message(cfp.model_dump(exclude_none=True))):
        last = event
    answer = parse_answer(last)
    return Bid.model_validate(answer.data) if answer.kind == "bid" else Decline.model_validate(answer.data)


def _plain_proposals(plain: list[Candidate], best_score: float | None) -> list[Proposal]:
    def confidence(c: Candidate) -> float:
        if best_score and c.score is not None and c.score > 0:
            return round(PLAIN_CONFIDENCE * min(c.score / best_score, 1.0), 4)
        return PLAIN_CONFIDENCE

    return [Proposal(candidate=c, bid=Bid(confidence=confidence(c), load=c.in_flight), negotiated=False) for c in plain]


def _span_name(what: str, cfp: CallForProposals) -> str:
    return f"{what} {cfp.skill}" if cfp.skill else what  # never the task text: it is message content


async def call_for_proposals(candidates: Iterable[Candidate], cfp: CallForProposals, http: httpx.AsyncClient,
                             timeout: float | None = None, trust: CardTrust | None = None) -> Proposals:
    """Send ``cfp`` to every negotiating candidate at once and rank the bids with the plain candidates.

    ``timeout`` (default: the CFP's deadline) bounds the whole round: a bid not in by then, an error
    or a decline excludes that candidate, with the reason in ``Proposals.excluded``; so does a card
    ``trust`` refuses (the CFP is never sent to it). Traced as one
    INTERNAL span ``negotiate`` (``negotiate {skill}`` for a named skill) over the CFP sends.
    """
    candidates = list(candidates)
    timeout = cfp.deadline_ms / 1000 if timeout is None else timeout
    span = tracer().start_span(_span_name("negotiate", cfp), kind=SpanKind.INTERNAL,
                               attributes={CANDIDATES: len(candidates)})
    if content_recording():
        span.set_attribute(TASK, redacted_json(cfp.task))
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        asks = {asyncio.ensure_future(_ask(c, cfp, http, trust)): c for c in candidates if c.negotiates}
        pending: set[asyncio.Future[Bid | Decline]] = set()
        if asks:
            _, pending = await asyncio.wait(asks, timeout=timeout)
            for late in pending:
                late.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        proposals: list[Proposal] = []
        excluded: list[Exclusion] = []
        for ask, candidate in asks.items():
            why, detail = _judge(ask, pending, timeout)
            if why is None:
                proposals.append(Proposal(candidate=candidate, bid=ask.result()))
            else:
                excluded.append(Exclusion(agent=candidate.name, url=candidate.url, why=why, detail=detail))
                span.add_event("excluded", {"agent": candidate.name, "url": candidate.url, "why": why, "detail": detail[:300]})
        best_score = max((c.score for c in candidates if c.score is not None), default=None)
        proposals += _plain_proposals([c for c in candidates if not c.negotiates], best_score)
        ranked = Proposals(rank(proposals), excluded)
        span.set_attribute(BIDS, sum(p.negotiated for p in ranked))
        span.set_attribute(DECLINES, sum(e.why == "declined" for e in excluded))
        span.set_attribute(EXCLUDED, len(excluded))
        if ranked:
            span.set_attribute(WINNER, ranked[0].candidate.name)
        return ranked


def _judge(ask: asyncio.Future[Bid | Decline], pending: set[Any], timeout: float) -> tuple[Any, str]:
    """(None, "") for a usable bid, else why the candidate is excluded."""
    if ask in pending:
        return "late", f"no answer within {timeout:g} s"
    error = ask.exception()
    if error is not None:
        return "error", describe_exception(error)
    answer = ask.result()
    if isinstance(answer, Decline):
        return "declined", answer.reason
    if not answer.can_handle:
        return "declined", "bid cannot handle the task"
    return None, ""


class Attempt(BaseModel):
    """One try of ``award``: who, and why it failed (None: it succeeded)."""

    agent: str
    url: str
    error: str | None = None

    def __str__(self) -> str:
        return f"{self.agent} at {self.url}: {self.error or 'ok'}"


@dataclass(frozen=True, slots=True)
class Award(Generic[T]):
    result: T
    winner: Proposal
    attempts: list[Attempt] = field(default_factory=list)  # the failed ones first, the winner's last


class AwardError(RuntimeError):
    """No proposal led to a result: every attempt (and, when known, every exclusion) is named."""

    def __init__(self, attempts: list[Attempt], excluded: Sequence[Exclusion] = ()) -> None:
        tried = "; ".join(map(str, attempts)) or "no proposals to try"
        left_out = f" (excluded: {'; '.join(map(str, excluded))})" if excluded else ""
        super().__init__(f"no candidate did the work: {tried}{left_out}")
        self.attempts, self.excluded = attempts, list(excluded)


async def award(proposals: Sequence[Proposal], perform: Callable[[Proposal], Awaitable[T]], *,
                failed: Callable[[T], bool | str | None] | None = None) -> Award[T]:
    """``perform`` the best proposal; on an exception, or a result ``failed`` judges failed, the next.

    ``failed(result)`` returns a reason (str) or True when the result is a failure. Raises
    :class:`AwardError` naming every attempt when none succeeds. Traced as an INTERNAL span ``award``.
    """
    attempts: list[Attempt] = []
    span = tracer().start_span("award", kind=SpanKind.INTERNAL)
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        for proposal in proposals:
            candidate = proposal.candidate
            try:
                result = await perform(proposal)
                verdict = failed(result) if failed is not None else None
                error = (verdict if isinstance(verdict, str) else "the result was judged a failure") if verdict else None
            except Exception as exc:
                error = describe_exception(exc)
            attempts.append(Attempt(agent=candidate.name, url=candidate.url, error=error))
            span.set_attribute(ATTEMPTS, len(attempts))
            if error is None:
                span.set_attribute(WINNER, candidate.name)
                return Award(result, proposal, attempts)
            span.add_event("attempt failed", {"agent": candidate.name, "url": candidate.url, "error": error[:300]})
        problem = AwardError(attempts, getattr(proposals, "excluded", ()))
        record_error(span, problem, "no_winner")
        raise problem


async def negotiate(registry: RegistryClient, capability_text: str, perform: Callable[[Proposal], Awaitable[T]], *,
                    skill: str | None = None, arguments: Sequence[str] | None = None,
                    deadline_ms: int = DEFAULT_DEADLINE_MS, limit: int = 5, exclude: Iterable[str] = (),
                    failed: Callable[[T], bool | str | None] | None = None,
                    http: httpx.AsyncClient | None = None) -> Award[T]:
    """Find candidates by the registry's text search, call for proposals, and award the work.

    ``exclude`` names agents never to consider (e.g. the caller itself). Raises :class:`AwardError`
    when no candidate is found or none succeeds.
    """
    skip = set(exclude)
    records = await registry.find(q=capability_text, limit=limit)
    candidates = [c for r in records if r.name not in skip for c in Candidate.from_record(r)]
    cfp = CallForProposals(task=capability_text, skill=skill,
                           arguments=list(arguments) if arguments is not None else None, deadline_ms=deadline_ms)
    client = http or traced_httpx(timeout=max(10.0, deadline_ms / 1000))
    try:
        proposals = await call_for_proposals(candidates, cfp, client)
        return await award(proposals, perform, failed=failed)
    finally:
        if http is None:
            await client.aclose()
