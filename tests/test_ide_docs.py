"""docs/ide.md holds configurations people paste into their hosts: each must be valid and must run."""

from __future__ import annotations

import json
import re
import shlex

from agents.cli import _parser
from tests.support import ROOT

DOC = (ROOT / "docs" / "ide.md").read_text()
MESH = "/abs/agent-mesh/.venv/bin/mesh"


def test_every_json_snippet_parses():
    blocks = re.findall(r"```json\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 4
    for block in blocks:
        json.loads(block)


def test_every_mesh_command_in_the_doc_is_one_the_cli_accepts():
    commands = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC, re.S)]
    argvs = [server["args"] for config in commands for server in (config.get("mcpServers") or config["servers"]).values()
             if server.get("command") == MESH]
    argvs += [shlex.split(line.split(MESH, 1)[1].split("#")[0]) for line in DOC.splitlines() if f"-- {MESH}" in line]
    assert len(argvs) >= 4
    for argv in argvs:
        args = _parser().parse_args(argv)
        assert args.command == "mcp" and args.registry == "http://127.0.0.1:7000"
