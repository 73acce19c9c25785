"""A secret in a tool argument never reaches spans, logs or error messages (content recording on)."""

from __future__ import annotations

import json
import time

import httpx
from mcp import Client

from tests.support import A2A_HEADERS, AgentProcess, rpc, skill_message

SECRET = "crash-Tr0ub4dor&3-horse"
WRONG = "hunter2-wrong-guess-9"


def _files(home) -> bytes:
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and "tasks" not in p.name)


async def test_secret_arguments_stay_out_of_spans_logs_and_errors(tmp_path):
    home = tmp_path / "vault"
    env = {"MESH_TRACE_CONTENT": "true", "MESH_TASK_STORE": "memory", "MESH_LOG_LEVEL": "DEBUG"}
    answers: list[str] = []
    with AgentProcess("tests.security.vault_agent:vault", home, env=env) as agent:
        async with httpx.AsyncClient(base_url=agent.url, headers=A2A_HEADERS, timeout=20) as http:
            for n, arguments in enumerate([
                {"user": "ada", "password": "open sesame"},
                {"user": "ada", "password": SECRET},                # an unexpected exception quoting it
                {"user": "ada", "password": WRONG},                 # a ToolError quoting it
                {"user": 7, "password": SECRET, "pin": "x"},        # invalid arguments
            ]):
                answer = await http.post("/", json=rpc("SendMessage", {"message": skill_message("unlock", arguments, f"m{n}")}))
                task = answer.json()["result"]["task"]
                task.pop("history")  # the caller's own message, echoed back to the caller: its data, not a leak
                answers.append(json.dumps(task))
        async with Client(agent.url + "/mcp", mode="legacy") as client:
            for password in (SECRET, WRONG):
                result = await client.call_tool("unlock", {"user": "ada", "password": password})
                assert result.is_error
                answers.append(result.model_dump_json())
        time.sleep(1.5)  # the span exporter's batch
    assert "vault of ada unlocked" in answers[0]
    assert "ValueError: cannot derive a key from '[REDACTED]' for ada" in answers[1]
    assert "wrong password [REDACTED] for ada" in answers[2]
    assert "invalid arguments" in answers[3]
    everything = "\n".join(answers).encode() + _files(home)
    assert b"tr0ub4dor" not in everything.lower() and b"hunter2" not in everything
    assert b"execute_tool unlock" in _files(home)  # the spans (with content recording on) were written
    assert b"[REDACTED]" in (home / "traces.db").read_bytes() + _files(home)
