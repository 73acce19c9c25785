"""The registry's command line against real processes: `mesh registry`, `agents`, `register`, `deregister`.

One `mesh registry` process serves the module; the helpdesk agent (`mesh serve`) registers itself
with it (it shares the registry's MESH_HOME, so it finds the write token file), the testbench agent
is registered by hand. A `mesh` process costs ~1.5 s of imports (`agents` imports the MCP SDK), so
what only a process shows (exit status, stderr, signals) runs as processes, side by side; what a
command prints runs through `agents.cli.main` in this process (`mesh_cli`), against the same servers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agents.cli import main
from tests.support import ROOT, AgentProcess, free_port

Call = tuple[str, ...] | tuple[tuple[str, ...], dict[str, str]]  # a command line, or one with its own env


@dataclass
class Mesh:
    url: str
    home: Path
    announcement: str
    registry: subprocess.Popen[str]
    helpdesk: AgentProcess
    testbench: AgentProcess

    def env(self, home: Path | None = None, **extra: str) -> dict[str, str]:
        return {**os.environ, "MESH_HOME": str(home or self.home), "MESH_REGISTRY_URL": self.url, **extra}

    def processes(self, *calls: Call) -> list[subprocess.CompletedProcess[str]]:
        """Run `mesh` command lines side by side (each with env(), or paired with its own env); results in order."""
        started = []
        for call in calls:
            args, env = call if isinstance(call[0], tuple) else (call, self.env())
            started.append((args, subprocess.Popen([sys.executable, "-m", "agents.cli", *args], cwd=ROOT, env=env,
                                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        results = []
        for args, proc in started:
            out, err = proc.communicate(timeout=60)
            results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
        return results


MeshCli = Callable[..., subprocess.CompletedProcess[str]]


def _registered(url: str, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/v1/agents", params={"name": name}).json()["agents"]:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not register in {timeout} s")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    home = tmp_path_factory.mktemp("registry-cli")
    port = free_port()
    with open(home / "registry.log", "w") as log:
        registry = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "registry", "--port", str(port), "--db", f"sqlite:///{home / 'reg.db'}"],
            cwd=ROOT, env={**os.environ, "MESH_HOME": str(home)}, stdout=subprocess.PIPE, stderr=log, text=True)
    # The testbench agent does not register itself: it starts while the registry starts.
    testbench = AgentProcess("tests.agents_under_test:agent", tmp_path_factory.mktemp("testbench")).start()
    announcement = registry.stdout.readline().strip()
    url = f"http://127.0.0.1:{port}"
    helpdesk = AgentProcess("agents.examples.helpdesk:agent", home, env={"MESH_REGISTRY_URL": url}).start()
    try:
        _registered(url, "helpdesk")
        yield Mesh(url, home, announcement, registry, helpdesk, testbench)
    finally:
        helpdesk.stop()
        testbench.stop()
        if registry.poll() is None:
            registry.kill()
            registry.wait(10)


@pytest.fixture
def mesh_cli(mesh, monkeypatch, capsys) -> MeshCli:
    """`mesh ARGS` in this process, with MESH_HOME (default: the registry's) and MESH_REGISTRY_URL set."""

    def run(*args: str, home: Path | None = None, token: str | None = None) -> subprocess.CompletedProcess[str]:
        monkeypatch.setenv("MESH_HOME", str(home or mesh.home))
        monkeypatch.setenv("MESH_REGISTRY_URL", mesh.url)
        if token is None:
            monkeypatch.delenv("MESH_REGISTRY_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MESH_REGISTRY_TOKEN", token)
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def test_registry_announces_its_url_and_token_file(mesh):
    token_path = mesh.home / "registry" / "token"
    assert mesh.announcement == f"registry at {mesh.url} (sqlite store); write token created in {token_path}"
    assert token_path.read_text().strip() not in mesh.announcement
    assert (mesh.home / "reg.db").exists()  # --db was used


def test_agents_prints_a_table_filters_and_json(mesh, mesh_cli):
    (plain,) = mesh.processes(("agents",))
    assert plain.returncode == 0, plain.stderr
    header, *rows = plain.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "REPLICAS", "SKILLS", "VERIFIED", "URL"]
    assert ["helpdesk", "1.0.0", "1/1", "opening_hours,book_callback", "no", mesh.helpdesk.url] in [r.split() for r in rows]
    assert header.index("URL") == rows[0].index("http://")  # aligned columns

    skill = mesh_cli("agents", "--skill", "book_callback", "--tag", "callback")
    assert [line.split()[0] for line in skill.stdout.splitlines()] == ["NAME", "helpdesk"]
    score_header, best = mesh_cli("agents", "--query", "please call me back").stdout.splitlines()[:2]
    assert score_header.split()[0] == "SCORE" and best.split()[1] == "helpdesk" and float(best.split()[0]) > 0
    none = mesh_cli("agents", "--kind", "mcp", "--name", "helpdesk")
    assert none.returncode == 0 and none.stdout == "no agent matches with a healthy instance (--all lists the others)\n"
    (record,) = [r for r in json.loads(mesh_cli("agents", "--json").stdout) if r["name"] == "helpdesk"]
    assert record["id"] == "helpdesk@1.0.0" and record["instances"][0]["url"] == mesh.helpdesk.url


def test_register_list_and_deregister(mesh, mesh_cli, tmp_path):
    # A writer elsewhere, with the token in MESH_REGISTRY_TOKEN instead of the registry's token file.
    token = (mesh.home / "registry" / "token").read_text().strip()
    by_url = mesh_cli("register", mesh.testbench.url, home=tmp_path, token=token)
    assert by_url.returncode == 0, by_url.stderr
    agent_line, instance_line, verification_line = by_url.stdout.splitlines()
    assert agent_line.split() == ["agent", "testbench@2.1.0"]
    instance_id = re.search(r"\bi-[0-9a-f]+\b", instance_line).group(0)
    assert instance_line.endswith(f"at {mesh.testbench.url} (new, no lease: kept by probes)")
    assert verification_line.split() == ["verification", "unsigned"]
    again = mesh_cli("register", mesh.testbench.url + "/.well-known/agent-card.json", "--lease", "60")
    assert f"{instance_id} at {mesh.testbench.url} (already registered, lease 60 s)" in again.stdout

    tools = tmp_path / "tools.json"  # the shape of an MCP tools/list result
    tools.write_text(json.dumps({"tools": [{"name": "read_file", "description": "Read a file",
                                            "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}]}))
    mcp_url = mesh_cli("register", "--mcp-url", mesh.testbench.url + "/mcp", "--name", "bench-tools", "--version", "1.0")
    assert mcp_url.returncode == 0 and mcp_url.stdout.split()[:2] == ["agent", "bench-tools@1.0"], mcp_url.stderr
    mcp_command = mesh_cli("register", "--mcp-command", "npx server-filesystem /tmp", "--name", "files", "--tools", str(tools))
    assert mcp_command.returncode == 0 and "at stdio:npx server-filesystem /tmp (new" in mcp_command.stdout, mcp_command.stderr

    rows = {line.split()[0]: line.split() for line in mesh_cli("agents", "--all").stdout.splitlines()[1:]}
    assert set(rows) == {"helpdesk", "testbench", "bench-tools", "files"}
    assert rows["testbench"][:3] == ["testbench", "2.1.0", "1/1"] and rows["testbench"][-1] == mesh.testbench.url
    assert re.fullmatch(r"echo,add,[a-z_,]+,\+\d+", rows["testbench"][3])  # a long skill list is cut
    assert rows["bench-tools"][-1] == mesh.testbench.url + "/mcp" and rows["files"][3] == "read_file"

    assert mesh_cli("deregister", instance_id).stdout == f"deregistered instance {instance_id}\n"
    assert mesh_cli("deregister", "bench-tools@1.0").stdout == "deregistered agent bench-tools@1.0 (every instance)\n"
    assert mesh_cli("deregister", "files@0.0.0").returncode == 0
    gone = mesh_cli("deregister", instance_id)
    assert gone.returncode == 1 and gone.stderr == f"mesh deregister: registry: no instance '{instance_id}' is registered (HTTP 404)\n"
    assert [line.split()[0] for line in mesh_cli("agents", "--all").stdout.splitlines()[1:]] == ["helpdesk"]


def test_refusals_print_the_registry_message(mesh_cli, tmp_path):
    card = {"name": "bad", "description": "d", "version": "1", "capabilities": {},
            "supportedInterfaces": [{"url": "ftp://nowhere", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["json"],
            "skills": [{"id": "s", "name": "S", "description": "d"}]}
    (tmp_path / "card.json").write_text(json.dumps(card))
    invalid = mesh_cli("register", "--card", str(tmp_path / "card.json"))
    assert invalid.returncode == 1
    assert invalid.stderr.splitlines() == ["mesh register: registry: invalid agent card (HTTP 422)",
                                           "  $.supportedInterfaces[0].url: must be an absolute http(s) URL, got 'ftp://nowhere'",
                                           "  $.defaultOutputModes[0]: must be a media type like 'text/plain', got 'json'",
                                           "  $.skills[0].tags: is required"]
    no_token = mesh_cli("register", "http://127.0.0.1:9", home=tmp_path)  # no token file in that home
    assert no_token.returncode == 1 and "(HTTP 401); set MESH_REGISTRY_TOKEN" in no_token.stderr
    usage = mesh_cli("register", "--mcp-command", "npx server", "--name", "files")
    assert usage.returncode == 2 and "--mcp-command needs --tools FILE.json" in usage.stderr


def test_missing_or_unreachable_registry_exits_with_a_message(mesh, tmp_path):
    no_registry = {k: v for k, v in mesh.env(tmp_path).items() if k != "MESH_REGISTRY_URL"}
    missing, unreachable = mesh.processes((("agents",), no_registry),
                                          (("deregister", "x@1", "--registry", "http://127.0.0.1:9"), no_registry))
    assert missing.returncode == 2
    assert missing.stderr == "mesh agents: no registry: give --registry URL or set MESH_REGISTRY_URL\n"
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("mesh deregister: cannot reach http://127.0.0.1:9: ConnectError")
    assert "Traceback" not in unreachable.stderr and len(unreachable.stderr.splitlines()) == 1


def test_registry_stops_cleanly_on_sigterm(mesh):
    """Last: it stops the module's registry."""
    mesh.registry.send_signal(signal.SIGTERM)
    assert mesh.registry.wait(15) == 0
    assert "Traceback" not in (mesh.home / "registry.log").read_text()
