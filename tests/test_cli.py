"""The mesh command line against real agents: card, send (text, data, stream, follow-up), errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT, AgentProcess


def mesh(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory):
    with AgentProcess("agents.examples.helpdesk:agent", tmp_path_factory.mktemp("helpdesk")) as agent:
        yield agent


def test_card_prints_and_validates(helpdesk):
    result = mesh("card", helpdesk.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("helpdesk 1.0.0")
    assert f"JSONRPC    1.0   {helpdesk.url}/" in result.stdout
    assert "skill book_callback" in result.stdout
    as_json = json.loads(mesh("card", helpdesk.url, "--json").stdout)
    assert as_json["name"] == "helpdesk"


def test_card_names_the_wrong_field(tmp_path):
    bad = {"name": "x", "description": "d", "version": "1", "supportedInterfaces": [{"url": "not a url", "protocolBinding": "JSONRPC"}],
           "capabilities": {}, "defaultInputModes": ["text"], "defaultOutputModes": ["text/plain"], "skills": [{"id": "s", "name": "S"}]}
    path = tmp_path / "card.json"
    path.write_text(json.dumps(bad))
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split("port ")[1].split()[0])
        result = mesh("card", f"http://127.0.0.1:{port}/card.json")
    finally:
        server.kill()
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert "invalid: $.supportedInterfaces[0].url: must be an absolute http(s) URL, got 'not a url'" in errors
    assert "invalid: $.supportedInterfaces[0].protocolVersion: is required" in errors
    assert "invalid: $.defaultInputModes[0]: must be a media type like 'text/plain', got 'text'" in errors
    assert "invalid: $.skills[0].description: is required" in errors
    assert "invalid: $.skills[0].tags: is required" in errors


def test_card_reports_unreachable_urls():
    result = mesh("card", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot fetch http://127.0.0.1:9/.well-known/agent-card.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_text_and_data(helpdesk):
    result = mesh("send", helpdesk.url, "When is billing open?")
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "The billing is open Mon-Fri 09:00-17:00." in result.stdout
    result = mesh("send", helpdesk.url, "--skill", "opening_hours", "--data", '{"department": "shop"}', "--binding", "HTTP+JSON")
    assert "The shop is open Mon-Sat 09:00-18:00." in result.stdout


def test_send_stream_and_answer_follow_ups(helpdesk):
    result = mesh("send", helpdesk.url, "--skill", "book_callback", "--data", '{"customer": "Ada"}', "--stream", "--json")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert "task" in events[0]
    last = events[-1]["statusUpdate"]
    assert last["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    ids = ("--task", last["taskId"], "--context", last["contextId"])
    assert "Morning or afternoon?" in mesh("send", helpdesk.url, "555-0100", *ids).stdout
    final = mesh("send", helpdesk.url, "afternoon", *ids, "--json")
    task = json.loads(final.stdout)["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["data"]["phone"] == "555-0100"


def test_send_failures_exit_non_zero_with_the_reason(helpdesk):
    result = mesh("send", helpdesk.url, "--skill", "teleport", "--data", "{}")
    assert result.returncode == 1 and "unknown skill 'teleport'" in result.stdout
    assert mesh("send", helpdesk.url, "--data", "{not json").returncode == 2
    assert mesh("send", helpdesk.url).returncode == 2


def test_serve_rejects_bad_targets():
    result = mesh("serve", "agents.examples.helpdesk:nothing")
    assert result.returncode == 2 and "not an agents.Agent" in result.stderr
    assert "expected MODULE:ATTR" in mesh("serve", "nocolon").stderr


def test_bad_settings_are_named(tmp_path):
    result = subprocess.run([sys.executable, "-m", "agents.cli", "serve", "agents.examples.helpdesk:agent"], cwd=ROOT,
                            capture_output=True, text=True, env={"PATH": "/usr/bin", "MESH_PORT": "http"}, timeout=60)
    assert result.returncode == 2 and "MESH_PORT" in result.stderr
