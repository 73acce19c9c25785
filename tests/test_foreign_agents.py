"""Foreign A2A agents in the mesh, over real processes: another vendor's 1.0 agent and 0.3 agents.

* ``fx-quotes`` (tests/node/foreign_agent.mjs) runs on the A2A JS SDK 1.3 (1.0, with 0.3 compat);
* ``shipping-rates`` and ``fragile-shipping`` (tests/node/legacy_agent.mjs) on the JS SDK 0.3.14;
* ``warehouse`` (tests/foreign_agents_under_test.py) is ours.

The foreign agents are registered by URL with ``mesh register``, probed by their cards, and called
by the coordinator inside workflows exactly like ours; the unit tests at the end pin the 0.3 card
mapping and what a foreign agent is sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.coordination.catalog import AgentInfo, SkillInfo
from agents.coordination.dispatch import StepDispatcher, Target
from agents.coordination.models import Plan, Step, StepResult, StepStatus, WorkflowRecord, WorkflowStatus
from agents.settings import MeshSettings
from protocols.a2a_results import CallOutcome, outcome_of
from protocols.cards import InvalidCard, parse_card, validate_card
from protocols.mesh_extensions import skill_schemas_extension
from tests.coordination.support import Mesh, artifact, message, send, state, status_text
from tests.nodejs import NODE_DIR, node_path_env, require_node
from tests.support import ROOT, free_port

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]


class NodeAgent:
    """``node SCRIPT PORT ARGS`` until stopped; ready once its card answers."""

    def __init__(self, node: str, script: str, home: Path, *args: str) -> None:
        self.port = free_port()
        self.log = home / f"{Path(script).stem}-{self.port}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([node, str(NODE_DIR / script), str(self.port), *args], cwd=NODE_DIR,
                                         env=node_path_env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{script} exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/.well-known/agent-card.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"{script} did not serve its card:\n{self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def mesh_cli(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**node_path_env(), "MESH_HOME": str(mesh.home), "MESH_REGISTRY_URL": mesh.registry_url}
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    node = require_node("@a2a-js/sdk", "a2a-js-sdk-v03", "express")
    mesh = Mesh(tmp_path_factory.mktemp("foreign"), env={"MESH_STEP_RETRIES": "1"})
    foreign: list[NodeAgent] = []
    mesh.start_registry()
    try:
        for script, *args in (("foreign_agent.mjs",), ("legacy_agent.mjs",),
                              ("legacy_agent.mjs", "--name", "fragile-shipping", "--die-on-request")):
            foreign.append(NodeAgent(node, script, mesh.home, *args))
        mesh.foreign = {"fx-quotes": foreign[0], "shipping-rates": foreign[1], "fragile-shipping": foreign[2]}
        mesh.start("warehouse", "tests.foreign_agents_under_test:warehouse")
        mesh.start("coordinator", "tests.coordination.coordinator_under_test:agent")
        yield mesh
    finally:
        mesh.stop()
        for agent in foreign:
            agent.stop()


@pytest.fixture(scope="module")
def registered(mesh):
    """Each foreign agent registered by URL through the CLI; the CLI's output by agent name."""
    return {name: mesh_cli(mesh, "register", agent.url) for name, agent in mesh.foreign.items()}


async def wait_probed(mesh: Mesh, name: str, timeout: float = 20) -> Any:
    """The agent's record once an instance is healthy and a probe of its card succeeded."""
    async with mesh.registry_client() as registry:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in await registry.find(name=name) if any(i.last_probe_ok_at for i in a.healthy)]
            if found:
                return found[0]
            time.sleep(0.2)
    raise TimeoutError(f"{name} never probed healthy")


def run_plan(plan: dict[str, Any], request: str = "") -> dict[str, Any]:
    return message(data={"skill": "run_plan", "arguments": {"plan": plan, "request": request}})


async def workflow_of(coordinator: str, workflow_id: str) -> dict[str, Any]:
    return artifact(await send(coordinator, message(data={"skill": "workflow", "arguments": {"workflow_id": workflow_id}})),
                    "workflow")


ORDER = {"id": "order", "agent": "warehouse", "skill": "pack_order",
         "arguments": {"sku": "KB-42", "quantity": 3, "ship_to": "FR"}}
FX = {"id": "fx", "agent": "fx-quotes", "skill": "quote", "depends_on": ["order"],
      "inputs": {"amount": "steps.order.order_total", "from": "steps.order.currency"}, "arguments": {"to": "EUR"},
      "text": "Quote {amount} {from} in {to}"}
SHIP = {"id": "ship", "agent": "shipping-rates", "depends_on": ["order"],
        "inputs": {"weight_kg": "steps.order.weight_kg", "destination": "steps.order.ship_to"},
        "text": "Rate a {weight_kg} kg parcel to {destination}"}
INVOICE = {"id": "invoice", "agent": "warehouse", "skill": "invoice", "depends_on": ["fx", "ship"],
           "inputs": {"goods_eur": "steps.fx.converted_amount", "shipping_eur": "steps.ship.shipping_price"}}
ANSWER = "{invoice_id}: {total_eur} EUR = {quote_id} {converted_amount} {to} + {carrier} to {destination} {shipping_price} EUR"


async def test_foreign_agents_register_by_url_and_are_found_healthy_by_their_cards(mesh, registered):
    for name, result in registered.items():
        assert result.returncode == 0, (name, result.stdout, result.stderr)
        assert name in result.stdout, result.stdout
    fx = await wait_probed(mesh, "fx-quotes")
    assert [s.id for s in fx.skills] == ["quote"] and fx.healthy[0].url == mesh.foreign["fx-quotes"].url
    legacy = await wait_probed(mesh, "shipping-rates")
    assert [s.id for s in legacy.skills] == ["rate"] and legacy.healthy[0].url == mesh.foreign["shipping-rates"].url
    assert legacy.healthy[0].lease_seconds is None  # no heartbeats: alive because its card answers the probes
    async with mesh.registry_client() as registry:
        assert [a.name for a in await registry.find(q="parcel shipping rate")][0] in ("shipping-rates", "fragile-shipping")
        assert [a.name for a in await registry.find(q="currency exchange quote")][:1] == ["fx-quotes"]


def test_mesh_card_and_mesh_send_work_against_an_a2a_0_3_agent(mesh):
    url = mesh.foreign["shipping-rates"].url
    card = mesh_cli(mesh, "card", url)
    assert card.returncode == 0, card.stderr
    assert "(an A2A 0.3 card)" in card.stdout and f"HTTP+JSON  0.3.0 {url}/rest" in card.stdout, card.stdout
    for binding in ("JSONRPC", "HTTP+JSON"):
        sent = mesh_cli(mesh, "send", url, "Rate a 2 kg parcel to GB", "--binding", binding, "--json")
        assert sent.returncode == 0, sent.stderr
        task = json.loads(sent.stdout.splitlines()[-1])["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
        assert task["artifacts"][0]["parts"][0]["data"]["shipping_price"] == 11.5  # 7.90 + 2 × 1.80
    refused = mesh_cli(mesh, "send", url, "--data", '{"weight_kg": 1, "destination": "MARS"}')
    assert refused.returncode == 1 and "rejected" in refused.stdout and "we do not ship to MARS" in refused.stdout
    unknown = mesh_cli(mesh, "send", url, "hello", "--task", "no-such-task")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "mesh send: TaskNotFoundError: Task not found: no-such-task"


async def test_a_workflow_hands_outputs_between_our_agent_a_js_1_0_agent_and_a_0_3_agent(mesh, registered):
    await mesh.wait_healthy("warehouse", "fx-quotes", "shipping-rates")
    plan = {"name": "export-order", "steps": [ORDER, FX, SHIP, INVOICE], "answer": ANSWER}
    task = await send(mesh.processes["coordinator"].url, run_plan(plan, "Invoice order KB-42 x3 to France in EUR"))
    assert state(task) == "completed", status_text(task)
    # 3 × 40 USD = 120 USD → 111.11 EUR at 1.08; 1.5 kg to FR = 5.50 + 1.5 × 1.30 = 7.45 EUR; total 118.56
    assert artifact(task, "answer") == ("INV-ORD-KB-42-3: 118.56 EUR = FX-USDEUR-12000 111.11 EUR "
                                        "+ Example Parcels to FR 7.45 EUR")
    steps = artifact(task, "workflow")["steps"]
    assert {s: (v["status"], v["agent"]) for s, v in steps.items()} == {
        "order": ("completed", "warehouse"), "fx": ("completed", "fx-quotes"),
        "ship": ("completed", "shipping-rates"), "invoice": ("completed", "warehouse")}


async def test_foreign_agents_questions_reach_the_customer_and_the_answers_go_back(mesh, registered):
    await mesh.wait_healthy("warehouse", "fx-quotes", "shipping-rates")
    fx = {**FX, "arguments": {}, "text": "Quote {amount} {from}"}  # no target currency: fx-quotes asks
    ship = {**SHIP, "inputs": {"weight_kg": "steps.order.weight_kg"}, "text": "Rate a {weight_kg} kg parcel"}
    plan = {"name": "export-order", "steps": [ORDER, fx, ship, INVOICE], "answer": ANSWER}
    coordinator = mesh.processes["coordinator"].url
    first = await send(coordinator, run_plan(plan))
    assert state(first) == "input-required" and status_text(first) == "Which currency should I quote 120 USD in?"
    ids = {"taskId": first["id"], "contextId": first["contextId"]}
    second = await send(coordinator, message("CHF", **ids))
    assert state(second) == "input-required", status_text(second)
    assert status_text(second) == "Where should the 1.5 kg parcel go (country code)?"  # the 0.3 agent asks
    done = await send(coordinator, message("NL", **ids))
    assert state(done) == "completed", status_text(done)
    # 120 USD → 105.56 CHF at 0.95/1.08; the invoice adds the shipping (in EUR) as it is told to
    assert artifact(done, "answer") == ("INV-ORD-KB-42-3: 113.01 EUR = FX-USDCHF-12000 105.56 CHF "
                                        "+ Example Parcels to NL 7.45 EUR")
    assert artifact(done, "workflow")["steps"]["fx"]["attempts"] == 2  # the question and the answer


async def test_a_foreign_task_failure_and_a_dying_foreign_agent_fail_the_step_with_a_clear_error(mesh, registered):
    await mesh.wait_healthy("warehouse", "fx-quotes")
    coordinator = mesh.processes["coordinator"].url
    plan = {"name": "export-order", "steps": [ORDER, {**FX, "arguments": {"to": "XYZ"}}]}
    failed = await send(coordinator, run_plan(plan))
    assert state(failed) == "failed"
    assert "fx step (no rate for XYZ: this desk quotes EUR, USD, GBP, CHF, JPY)" in status_text(failed)
    workflow = await workflow_of(coordinator, failed["id"])
    assert workflow["status"] == "dead-lettered" and workflow["steps"]["fx"]["status"] == "failed"
    assert workflow["steps"]["fx"]["error"].startswith("no rate for XYZ")

    await wait_probed(mesh, "fragile-shipping")
    dying = mesh.foreign["fragile-shipping"]
    plan = {"name": "export-order", "steps": [ORDER, {**SHIP, "agent": "fragile-shipping"}]}
    failed = await send(coordinator, run_plan(plan))
    assert state(failed) == "failed" and dying.proc.wait(10) == 3  # it died on the request
    error = (await workflow_of(coordinator, failed["id"]))["steps"]["ship"]["error"]
    assert dying.url in error and "connection refused" in error, error  # the retry found nobody there
    assert f"the ship step ({error})" in status_text(failed) and failed["id"] in status_text(failed)


# -- units: the 0.3 card mapping, what a foreign agent is sent, what it answers -------------------

LEGACY_CARD = {
    "name": "legacy", "description": "An A2A 0.3 agent", "version": "0.1.0", "protocolVersion": "0.3.0",
    "url": "http://legacy.example/rpc", "preferredTransport": "JSONRPC",
    "additionalInterfaces": [{"url": "http://legacy.example/rest", "transport": "HTTP+JSON"}],
    "capabilities": {"streaming": True, "stateTransitionHistory": True}, "supportsAuthenticatedExtendedCard": True,
    "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}}, "security": [{"key": []}],
    "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "s", "name": "S", "description": "does s", "tags": ["s"]}],
}


def test_a_0_3_card_is_read_as_a_1_0_card_with_0_3_interfaces():
    assert validate_card(LEGACY_CARD) == []
    card = parse_card(json.dumps(LEGACY_CARD))
    assert [(i.protocol_binding, i.protocol_version, i.url) for i in card.supported_interfaces] == [
        ("JSONRPC", "0.3.0", "http://legacy.example/rpc"), ("HTTP+JSON", "0.3.0", "http://legacy.example/rest")]
    assert card.capabilities.streaming and card.capabilities.extended_agent_card
    assert card.security_schemes["key"].api_key_security_scheme.location == "header"
    assert LEGACY_CARD["url"] == "http://legacy.example/rpc"  # the caller's dict is left as it was
    broken = {**LEGACY_CARD, "url": "not a url"}
    with pytest.raises(InvalidCard, match=r"\$\.url: must be an absolute http\(s\) URL"):
        parse_card(broken)
    # a transitional card (1.0 interfaces plus the 0.3 fields, as the JS SDK 1.x serves 0.3 clients) keeps its list
    both = {**LEGACY_CARD, "supportedInterfaces": [
        {"url": "http://legacy.example/v1", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]}
    assert [i.protocol_version for i in parse_card(both).supported_interfaces] == ["1.0"]


class RecordingCaller:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def call(self, url: str, **fields: Any) -> CallOutcome:
        self.calls.append({"url": url, **fields})
        return CallOutcome("completed", {"ok": True})


def _target(foreign: bool) -> Target:
    card = {} if foreign else {"capabilities": {"extensions": [{"uri": skill_schemas_extension({}).uri}]}}
    info = AgentInfo(id="a", name="fx", description="", card=card, foreign=foreign, urls=("http://fx",),
                     skills={"quote": SkillInfo("quote", "Quote", "")})
    return Target(info, "http://fx", "quote")


async def test_a_foreign_agent_gets_words_and_plain_data_never_our_skill_call():
    step = Step(id="fx", agent="fx", skill="quote", text="Quote {amount} {from} in {to} for {customer_name}",
                depends_on=["customer"])
    plan = Plan(steps=[Step(id="customer", agent="crm"), step])
    record = WorkflowRecord(id="w", status=WorkflowStatus.RUNNING, request="the customer's words", plan=plan)
    record.steps["customer"] = StepResult(status=StepStatus.COMPLETED, output={"customer_name": "Ada", "amount": 1})
    caller = RecordingCaller()
    dispatcher = StepDispatcher(caller, directory=None, settings=MeshSettings.from_env({}))  # type: ignore[arg-type]
    arguments = {"amount": 120, "from": "USD", "to": "EUR"}
    result = await dispatcher.send(step, [_target(foreign=True)], arguments, record, "m1")
    assert result.status.value == "completed" and result.output == {"ok": True}
    sent = caller.calls[-1]
    assert sent["text"] == "Quote 120 USD in EUR for Ada" and sent["data"] == arguments  # arguments win over facts
    await dispatcher.send(step, [_target(foreign=False)], arguments, record, "m2")
    assert caller.calls[-1]["text"] is None and caller.calls[-1]["data"] == {"skill": "quote", "arguments": arguments}
    await dispatcher.send(step.model_copy(update={"text": None}), [_target(foreign=True)], {}, record, "m3")
    assert caller.calls[-1]["text"] == "the customer's words" and caller.calls[-1]["data"] is None


def test_an_answer_in_the_status_message_is_the_output():
    answer = {"task": {"id": "t", "status": {"state": "TASK_STATE_COMPLETED", "message": {
        "role": "ROLE_AGENT", "parts": [{"text": "2 kg to GB: 11.5 EUR"}, {"data": {"shipping_price": 11.5}}]}}}}
    outcome = outcome_of(answer)
    assert outcome.state == "completed" and outcome.output == {"shipping_price": 11.5}
    assert outcome.text == "2 kg to GB: 11.5 EUR"
    words_only = {"task": {"id": "t", "status": {"state": "TASK_STATE_FAILED", "message": {"parts": [{"text": "no"}]}}}}
    assert outcome_of(words_only).output is None
