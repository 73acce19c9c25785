"""What every ``mesh`` command shares: exit codes, the errors ``main`` turns into one message, running a service."""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from pathlib import Path
from types import ModuleType
from collections.abc import Coroutine
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CliError", "CommandFailed", "import_from_cwd", "run_until_signalled"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """Bad usage or input: printed as one line, exit 2."""


class CommandFailed(Exception):
    """The command ran and failed (the other side said no): printed as given, possibly several lines, exit 1."""


def import_from_cwd(module_name: str) -> ModuleType:
    """Import MODULE resolved from the current directory too, as `python -m` and uvicorn do: the `mesh`
    console script's sys.path holds only its own directory and the installed packages."""
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(module_name)


def run_until_signalled(service: Coroutine[Any, Any, None]) -> int:
    """Run a serving coroutine until SIGTERM or Ctrl-C; a clean stop exits 0."""
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the previous
    # handler; a no-op one lets the service return, so a clean stop exits 0 rather than -15.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        asyncio.run(service)
    except KeyboardInterrupt:
        pass
    return EXIT_OK
