"""A2A client helpers: fetch and validate a card, send a message, read the replies as JSON.

A2A 1.0 agents, and A2A 0.3 agents through the SDK client's 0.3 transports (docs/foreign-agents.md).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.compat.v0_3.versions import is_legacy_version
from a2a.helpers import new_data_part, new_text_part
from a2a.types import AgentCard, CancelTaskRequest, GetTaskRequest, Message, Role, SendMessageRequest
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError, InternalError, InvalidAgentResponseError
from google.protobuf.json_format import MessageToDict
from opentelemetry import context as otel_context
from opentelemetry import trace

from protocols.card_signing import CardTrust
from protocols.cards import CardProblem, InvalidCard, parse_card, validate_card
from tracing import conventions as semconv
from tracing.propagation import inject_trace_headers

__all__ = ["A2AConnection", "CardFetchError", "card_url", "fetch_card", "user_message"]

WELL_KNOWN_CARD = "/.well-known/agent-card.json"


class CardFetchError(RuntimeError):
    """The card could not be fetched: the message carries the URL and the HTTP error."""


def card_url(url: str) -> str:
    """The card URL of an agent base URL (a URL that already names a ``.json`` file is kept)."""
    return url if url.endswith(".json") else url.rstrip("/") + WELL_KNOWN_CARD


async def fetch_card(url: str, http: httpx.AsyncClient) -> tuple[dict[str, Any], list[CardProblem]]:
    """The card's JSON and its problems (empty when valid)."""
    target = card_url(url)
    try:
        response = await http.get(target)
    except httpx.HTTPError as exc:
        raise CardFetchError(f"cannot fetch {target}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise CardFetchError(f"cannot fetch {target}: HTTP {response.status_code} {response.reason_phrase}")
    try:
        data = response.json()
    except ValueError as exc:
        raise CardFetchError(f"{target} is not JSON: {exc}") from None
    return data, validate_card(data)


def user_message(
    text: str | None = None,
    data: Any = None,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    message_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    parts = []
    if text:
        parts.append(new_text_part(text))
    if data is not None:
        parts.append(new_data_part(data))
    if not parts:
        raise ValueError("a message needs text or data")
    message = Message(
        message_id=message_id or str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=parts,
        task_id=task_id or "",
        context_id=context_id or "",
    )
    if metadata:
        message.metadata.update(metadata)
    return message


@dataclass
class A2AConnection:
    """A client for one agent, created from its validated card."""

    card: AgentCard
    http: httpx.AsyncClient
    streaming: bool = False
    bindings: tuple[str, ...] = ("JSONRPC", "HTTP+JSON")
    trace_id: str | None = None  # of the last send, when tracing is configured

    @classmethod
    async def open(cls, url: str, http: httpx.AsyncClient, *, trust: CardTrust | None = None,
                   **options: Any) -> A2AConnection:
        """Connect to the agent at ``url`` by its card: ``InvalidCard`` for a wrong field,
        ``UntrustedCard`` for a card ``trust`` refuses (a changed card, an untrusted signer)."""
        data, problems = await fetch_card(url, http)
        if problems:
            raise InvalidCard(problems)
        if trust is not None:
            trust.check(data, card_url(url))
        return cls(card=parse_card(data), http=http, **options)

    def _client(self) -> Any:
        """The SDK client; it picks the transport per interface version (0.3 interfaces: its 0.3 ones)."""
        config = ClientConfig(
            httpx_client=self.http,
            streaming=self.streaming,
            supported_protocol_bindings=list(self.bindings),
            use_client_preference=True,
        )
        try:
            return ClientFactory(config).create(self.card)
        except ValueError:
            offered = ", ".join(f"{i.protocol_binding} {i.protocol_version or '?'} at {i.url}"
                                for i in self.card.supported_interfaces) or "none"
            raise ValueError(f"agent {self.card.name!r} has no interface this client speaks "
                             f"({'/'.join(self.bindings)}); it offers: {offered}") from None

    def _lean_url(self) -> str | None:
        """The URL of a 1.0 JSON-RPC interface, if the card has one: there plain POSTs do (``call``,
        ``get_task``); every other interface (0.3, HTTP+JSON only, streaming) goes through the SDK client."""
        if self.streaming or "JSONRPC" not in self.bindings:
            return None
        return next((i.url for i in self.card.supported_interfaces
                     if i.protocol_binding == "JSONRPC" and not is_legacy_version(i.protocol_version)), None)

    async def _post_jsonrpc(self, url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One 1.0 JSON-RPC request; its ``result``, or the SDK's exception for its error."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        response = await self.http.post(url, json=body, headers=_JSONRPC_HEADERS)
        if response.status_code != 200:
            response.raise_for_status()
        try:
            answer = response.json()
        except ValueError:
            raise InvalidAgentResponseError(
                f"{self.card.name} at {url} answered {method} with something other than JSON "
                f"({response.headers.get('content-type') or 'no content type'}): {response.text[:120]!r}") from None
        if isinstance(answer, dict) and "error" in answer:
            raise _jsonrpc_error(answer["error"])
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise InvalidAgentResponseError(
                f"{self.card.name} at {url} answered {method} without a JSON-RPC result: {response.text[:120]!r}")
        return result

    async def get_task(self, task_id: str) -> dict[str, Any]:
        """The task as the agent has it now, in the JSON form ``send`` yields (``{"task": ...}``)."""
        _propagate_from(self.http)
        url = self._lean_url()
        if url is not None:
            return {"task": await self._post_jsonrpc(url, "GetTask", {"id": task_id})}
        client = self._client()
        try:
            return {"task": MessageToDict(await client.get_task(GetTaskRequest(id=task_id)))}
        finally:
            await client.close()

    async def cancel_task(self, task_id: str) -> dict[str, Any]:
        """Ask the agent to cancel a task; the task as it is afterwards (``{"task": ...}``)."""
        _propagate_from(self.http)
        client = self._client()
        try:
            return {"task": MessageToDict(await client.cancel_task(CancelTaskRequest(id=task_id)))}
        finally:
            await client.close()

    async def call(self, message: Message) -> dict[str, Any]:
        """One blocking ``SendMessage``; the response (``{"task": ...}`` or ``{"message": ...}``) as JSON.

        The lean path for agents with a 1.0 JSON-RPC interface: one POST on the caller's httpx
        client, no SDK client and no protobuf round trip of the answer (a coordinator makes many
        such calls). Other agents (A2A 0.3, HTTP+JSON only) go through the SDK client and its
        transports, which convert 0.3 answers to 1.0. Errors are what the SDK client raises:
        ``httpx.HTTPStatusError`` for HTTP failures, the SDK's ``A2AError`` subclass of the
        JSON-RPC error code, ``InvalidAgentResponseError`` for an answer that is not JSON-RPC.
        Traced like ``send``.
        """
        url = self._lean_url()
        if url is None:
            last: dict[str, Any] = {}
            async for event in self.send(message):
                last = event
            return last
        _propagate_from(self.http)
        agent_span, call_span = self._spans("SendMessage", message)
        result: dict[str, Any] = {}
        try:
            with trace.use_span(call_span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await self._post_jsonrpc(url, "SendMessage", {"message": MessageToDict(message)})
                if not ({"task", "message"} & result.keys()):
                    raise InvalidAgentResponseError(
                        f"{self.card.name} answered SendMessage with neither a task nor a message: {sorted(result)}")
            return result
        except BaseException as error:
            for span in (call_span, agent_span):
                semconv.record_error(span, error)
            raise
        finally:
            _record_outcome(result, call_span, agent_span)
            call_span.end()
            agent_span.end()

    def _spans(self, method: str, message: Message) -> tuple[trace.Span, trace.Span]:
        """``invoke_agent {name}`` (CLIENT) and, inside it, the A2A method's CLIENT span."""
        target = urlsplit(self.card.supported_interfaces[0].url) if self.card.supported_interfaces else None
        attributes = semconv.agent_attributes(self.card.name, self.card.version, self.card.description)
        if target is not None and target.hostname:
            attributes[semconv.SERVER_ADDRESS] = target.hostname
            attributes[semconv.SERVER_PORT] = target.port or (443 if target.scheme == "https" else 80)
        if message.context_id:
            attributes[semconv.CONVERSATION_ID] = message.context_id
        agent_span = semconv.agent_span(self.card.name, attributes, remote=True)
        if agent_span.get_span_context().is_valid:
            self.trace_id = format(agent_span.get_span_context().trace_id, "032x")
        call_span = semconv.a2a_span(
            method, server=False, attributes={semconv.A2A_MESSAGE_ID: message.message_id},
            context=trace.set_span_in_context(agent_span),
        )
        return agent_span, call_span

    async def send(self, message: Message, *, return_immediately: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Send ``message``; yields each StreamResponse as JSON (one when not streaming).

        Traced as ``invoke_agent {name}`` (CLIENT) over ``SendMessage``/``SendStreamingMessage``
        (CLIENT); the request carries the trace context to the agent.
        """
        _propagate_from(self.http)
        client = self._client()
        request = SendMessageRequest(message=message)
        if return_immediately:
            request.configuration.return_immediately = True
        method = "SendStreamingMessage" if self.streaming else "SendMessage"
        agent_span, call_span = self._spans(method, message)
        context = trace.set_span_in_context(call_span)
        events = client.send_message(request)
        last: dict[str, Any] = {}
        try:
            while True:
                token = otel_context.attach(context)  # current only while the client works, not across yields
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    break
                finally:
                    otel_context.detach(token)
                last = MessageToDict(event)
                yield last
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                for span in (call_span, agent_span):
                    semconv.record_error(span, error)
            raise
        finally:
            _record_outcome(last, call_span, agent_span)
            call_span.end()
            agent_span.end()
            await events.aclose()
            await client.close()


_JSONRPC_HEADERS = {"A2A-Version": "1.0"}
_ERRORS_BY_CODE = {code: kind for kind, code in JSON_RPC_ERROR_CODE_MAP.items()}


def _jsonrpc_error(error: Any) -> Exception:
    """The SDK's exception for a JSON-RPC error object (what its own client raises)."""
    if not isinstance(error, dict):
        return InvalidAgentResponseError(f"malformed JSON-RPC error: {error!r}")
    kind = _ERRORS_BY_CODE.get(error.get("code"), InternalError if error.get("code") == -32603 else A2AError)
    return kind(str(error.get("message") or "error"), error.get("data") if isinstance(error.get("data"), dict) else None)


def _record_outcome(event: dict[str, Any], *spans: trace.Span) -> None:
    payload = event.get("task") or event.get("statusUpdate") or {}
    task_id = payload.get("id") or payload.get("taskId")
    for span in spans:
        if task_id:
            span.set_attribute(semconv.A2A_TASK_ID, task_id)
        if payload.get("status", {}).get("state"):
            span.set_attribute(semconv.A2A_TASK_STATE, payload["status"]["state"])
        if payload.get("contextId"):
            span.set_attribute(semconv.CONVERSATION_ID, payload["contextId"])


def _propagate_from(http: httpx.AsyncClient) -> None:
    """Make sure the caller's httpx client carries the trace context (added once)."""
    hooks = http.event_hooks["request"]
    if inject_trace_headers not in hooks:
        http.event_hooks = {**http.event_hooks, "request": [*hooks, inject_trace_headers]}
