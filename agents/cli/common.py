"""What every ``mesh`` command shares: exit codes, the errors ``main`` turns into one message, running a service."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CliError", "CommandFailed", "run_until_signalled"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """Bad usage or input: printed as one line, exit 2."""


class CommandFailed(Exception):
    """The command ran and failed (the other side said no): printed as given, possibly several lines, exit 1."""


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
