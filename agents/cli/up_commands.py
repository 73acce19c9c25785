"""``mesh up``: the registry and every agent of a manifest as local processes, with a live status table.

    mesh up [--manifest MODULE:ATTR] [--only NAMES] [--registry-port N] [--no-table] [--db URL]

Supervision (order, readiness, logs, ``up.json``, restart once, stop) is ``agents.supervisor``;
this module parses the command and draws the table. Ctrl-C or SIGTERM stops everything and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agents.cli.common import EXIT_OK, CliError, CommandFailed, import_from_cwd
from agents.customer_service.manifest import REGISTRY_PORT, MeshProcess
from agents.settings import MeshSettings

if TYPE_CHECKING:
    from agents.supervisor import MeshStatus

__all__ = ["add_parsers", "load_manifest"]

DEFAULT_MANIFEST = "agents.customer_service.manifest:mesh_processes"
REFRESH_SECONDS = 1.0
EVENTS_SHOWN = 6  # under the live table: the latest events
COLUMNS = ("NAME", "URL", "PID", "PROCESS", "REGISTRY", "IN-FLIGHT", "ROLE")


def load_manifest(spec: str, only: Sequence[str] = ()) -> tuple[MeshProcess, ...]:
    """``MODULE:ATTR`` naming a tuple of MeshProcess or a function returning one; ``only`` keeps those names."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"--manifest: expected MODULE:ATTR, got {spec!r}")
    try:
        value = getattr(import_from_cwd(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CliError(f"--manifest {spec}: {exc}") from None
    try:
        processes = tuple(value() if callable(value) else value)
    except TypeError:
        processes = (value,)
    if not processes or not all(isinstance(p, MeshProcess) for p in processes):
        raise CliError(f"--manifest {spec}: expected MeshProcess entries")
    if only:
        unknown = sorted(set(only) - {p.name for p in processes})
        if unknown:
            known = ", ".join(p.name for p in processes)
            raise CliError(f"--only: no process named {', '.join(unknown)} (known: {known})")
        processes = tuple(p for p in processes if p.name in only)
    return processes


def _cmd_up(args: argparse.Namespace) -> int:
    only = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    processes = load_manifest(args.manifest, only)
    settings = MeshSettings.from_env()
    live = not args.no_table and sys.stdout.isatty()
    return asyncio.run(_up(processes, settings, args.registry_port, args.db, _Display(live)))


async def _up(processes: Sequence[MeshProcess], settings: MeshSettings, registry_port: int, db: str | None,
              display: _Display) -> int:
    # Imported here: the other commands need none of the process machinery.
    from agents.supervisor import StartError, StartInterrupted, Supervisor

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        supervisor = Supervisor(processes, settings, registry_port, db, on_event=display.event)
    except StartError as exc:
        raise CommandFailed(str(exc)) from None
    display.plain(f"mesh up: {len(processes)} agent(s), state and logs in {supervisor.home}")
    failure = None
    try:
        state = await supervisor.start(stop)
        display.plain(f"mesh is up: registry at {state.registry_url}, state in {supervisor.home / 'up.json'}; "
                      "Ctrl-C stops everything")
        while not stop.is_set():
            display.show(await supervisor.status())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)
    except StartInterrupted:
        pass
    except StartError as exc:
        failure = str(exc)
    finally:  # whatever happened, nothing is left running
        display.close()
        display.plain("start failed; stopping what was started" if failure else "stopping")
        await supervisor.stop()
    if failure:
        raise CommandFailed(failure)
    display.plain("mesh stopped")
    return EXIT_OK


class _Display:
    """Live: the table redrawn in place (plain ANSI) with the latest events under it.
    Otherwise: the table once, then one line per event and per registry state change."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._drawn_lines = 0  # > 0 while a live table is on screen
        self._shown_once = False
        self._events: deque[str] = deque(maxlen=EVENTS_SHOWN)
        self._health: dict[str, str] = {}

    def plain(self, line: str) -> None:
        print(line, flush=True)

    def event(self, line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {line}"
        if self._drawn_lines:
            self._events.append(stamped)  # drawn with the next refresh
        else:
            self.plain(stamped)

    def show(self, status: MeshStatus) -> None:
        table = render_table(status)
        if self.live:
            self._redraw(table)
        elif not self._shown_once:
            self.plain(table)
        else:
            for row in status.processes:
                before = self._health.get(row.name)
                if before is not None and before != row.registry:
                    self.event(f"{row.name}: registry {before} -> {row.registry}")
        self._shown_once = True
        self._health = {row.name: row.registry for row in status.processes}

    def _redraw(self, table: str) -> None:
        width = shutil.get_terminal_size().columns - 1  # a wrapped line would break the cursor arithmetic
        lines = [line[:width] for line in [*table.splitlines(), "", *self._events]]
        up = f"\033[{self._drawn_lines}A\r\033[J" if self._drawn_lines else ""
        sys.stdout.write(up + "\n".join(lines) + "\n")
        sys.stdout.flush()
        self._drawn_lines = len(lines)

    def close(self) -> None:
        """Leave the live table on screen and go back to plain lines."""
        self._drawn_lines = 0
        for line in self._events:
            self.plain(line)
        self._events.clear()


def render_table(status: MeshStatus) -> str:
    rows = [list(COLUMNS)]
    for p in status.processes:
        process = p.process + (f" ({p.restarts} restart)" if p.restarts else "")
        rows.append([p.name, p.url, str(p.pid or "-"), process, p.registry,
                     "-" if p.in_flight is None else str(p.in_flight), p.role])
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    up = sub.add_parser("up", help="run the registry and every agent of the mesh as local processes")
    up.add_argument("--manifest", default=DEFAULT_MANIFEST,
                    help=f"MODULE:ATTR naming a tuple of MeshProcess or a function returning one "
                         f"(default {DEFAULT_MANIFEST})")
    up.add_argument("--only", default=None, help="comma-separated process names to start (the registry always starts)")
    up.add_argument("--registry-port", type=int, default=REGISTRY_PORT, help=f"registry port (default {REGISTRY_PORT})")
    up.add_argument("--no-table", action="store_true", help="print the table once, then only changes")
    up.add_argument("--db", default=None,
                    help="postgresql://… or sqlite:///… for the registry store and the workflow state "
                         "(default: SQLite files under MESH_HOME)")
    up.set_defaults(run=_cmd_up)
