"""Run a mesh on this machine: the registry, then each agent, as separate processes; stop them in reverse.

``mesh up`` (``agents/cli/up_commands.py``) is the command line around it; nothing here knows about
terminals. The supervisor starts the registry, waits for its ``/readyz``, then starts every agent of
the manifest in order with ``MESH_REGISTRY_URL`` pointing at it and one shared ``MESH_HOME``, each
waited for until it is ready *and* registered healthy, so a later agent (the coordinator) finds the
earlier ones. Each process logs to ``$MESH_HOME/logs/<name>.log``. Once everything is up it writes
``$MESH_HOME/up.json`` (``UpState``) so other commands find the registry and the coordinator.

A process that dies while the mesh is up is restarted once; if it dies again it stays down and is
shown as exited (a crash loop would only fill its log). Stopping sends SIGTERM to the agents in
reverse start order (they deregister), the registry last, and SIGKILLs whatever is still running
after ``STOP_TIMEOUT``. Children run in their own session, so a terminal's Ctrl-C reaches only the
supervisor and the order holds; the price is that a SIGKILLed supervisor leaves them running
(``up.json`` lists their pids).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel

from agents.customer_service.manifest import MeshProcess
from agents.settings import MeshSettings
from protocols.registry_client import RegistryClient, RegistryError
from protocols.serving import base_url_for, bind_socket
from registry.models import InstanceRecord, InstanceState

__all__ = ["MeshStatus", "ProcessInfo", "ProcessStatus", "StartError", "StartInterrupted", "Supervisor", "UpState",
           "read_up_state", "up_state_path"]

START_TIMEOUT = 30.0  # per process: ready and registered
STOP_TIMEOUT = 5.0  # per process: SIGTERM, then SIGKILL
LOG_TAIL_LINES = 15
REGISTRY = "registry"
_POLL = 0.1
# Never inherited by the children: each is given its own port and announces its own address.
_PER_PROCESS_ENV = ("MESH_PORT", "MESH_PUBLIC_URL")


class StartError(Exception):
    """The mesh could not be started; the message says which process and why (with its log's last lines)."""


class StartInterrupted(Exception):
    """A stop was asked for while the mesh was starting."""


class ProcessInfo(BaseModel):
    name: str
    role: str
    url: str
    pid: int
    log: str
    target: str | None = None  # what ``mesh serve`` loaded; None for the registry


class UpState(BaseModel):
    """``$MESH_HOME/up.json``: what a running ``mesh up`` started, for the other commands."""

    supervisor_pid: int
    registry_url: str
    processes: list[ProcessInfo]  # the registry first, then the agents in start order

    def url_of(self, name: str) -> str | None:
        return next((p.url for p in self.processes if p.name == name), None)


def up_state_path(home: Path) -> Path:
    return home / "up.json"


def read_up_state(home: Path) -> UpState | None:
    """The state the ``mesh up`` running in this home wrote; None when none runs (a stale file is ignored)."""
    try:
        state = UpState.model_validate_json(up_state_path(home).read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(state.supervisor_pid) else None


class ProcessStatus(BaseModel):
    name: str
    role: str
    url: str
    pid: int | None
    process: str  # starting | running | exited 1 | exited SIGKILL
    registry: str  # healthy | unhealthy | evicted | absent | unknown (registry not answering) | - (the registry)
    in_flight: int | None  # as last heartbeated to the registry
    restarts: int


class MeshStatus(BaseModel):
    processes: list[ProcessStatus]


@dataclass
class _Child:
    name: str
    role: str
    argv: list[str]  # after ``python -m agents.cli``
    port: int
    url: str
    log: Path
    target: str | None = None
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    restarting: bool = False
    log_start: int = 0  # where this run's output begins in the (appended) log

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def process_state(self) -> str:
        if self.proc is None or self.restarting:
            return "starting"
        return "running" if self.proc.returncode is None else f"exited {_describe_exit(self.proc.returncode)}"

    def info(self) -> ProcessInfo:
        assert self.proc is not None
        return ProcessInfo(name=self.name, role=self.role, url=self.url, pid=self.proc.pid, log=str(self.log),
                           target=self.target)


class Supervisor:
    """Starts, watches and stops one mesh; ``on_event`` receives one human line per thing that happened.

    Creating one checks every port (and that no other mesh is up in this home) before anything
    starts: StartError names the first process whose port is taken.
    """

    def __init__(self, processes: Sequence[MeshProcess], settings: MeshSettings, registry_port: int,
                 db: str | None = None, on_event: Callable[[str], None] = lambda line: None) -> None:
        names = [p.name for p in processes]
        duplicates = {n for n in names if names.count(n) > 1} | ({REGISTRY} & set(names))
        if duplicates:
            raise StartError(f"process names must be unique and not {REGISTRY!r}: {', '.join(sorted(duplicates))}")
        self.settings = settings
        self.home = settings.home.resolve()
        self._refuse_second_mesh()
        self.db = db
        self.on_event = on_event
        self._up = False  # everything started: from now on an exit is restarted
        self._stopping = False
        self._halt = asyncio.Event()  # set by stop(): interrupts a restart in progress
        self._watchers: list[asyncio.Task[None]] = []
        logs = self.home / "logs"
        registry_argv = ["registry", "--port", str(registry_port), *(["--db", db] if db else [])]
        self.registry = _Child(REGISTRY, "discovery", registry_argv, registry_port,
                               self._url(REGISTRY, registry_port), logs / f"{REGISTRY}.log")
        self.agents = [_Child(p.name, p.role, ["serve", p.target, "--port", str(p.port)], p.port,
                              self._url(p.name, p.port), logs / f"{p.name}.log", target=p.target) for p in processes]
        self._http = httpx.AsyncClient(timeout=2)

    @property
    def children(self) -> list[_Child]:
        return [self.registry, *self.agents]

    # -- start --------------------------------------------------------------------------------

    async def start(self, stop: asyncio.Event) -> UpState:
        """Start everything in order; raises StartError (the caller then calls ``stop``) or StartInterrupted."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        base_env = {k: v for k, v in os.environ.items() if k not in _PER_PROCESS_ENV}
        base_env.update(MESH_HOME=str(self.home), PYTHONUNBUFFERED="1")
        await self._launch(self.registry, base_env, stop)
        agent_env = {**base_env, "MESH_REGISTRY_URL": self.registry.url}
        if self.db and not self.settings.workflow_db:  # --db holds the workflow state too (the coordinator's)
            agent_env["MESH_WORKFLOW_DB"] = self.db
        async with RegistryClient(self.registry.url, http=self._http) as registry:
            for child in self.agents:
                await self._launch(child, agent_env, stop, registry)
        for child in self.children:  # one that died while a later one was starting
            if child.exit_code is not None:
                raise StartError(self._exit_message(child))
        state = self.up_state()
        self._write_up_state(state)
        self._up = True
        return state

    def _url(self, name: str, port: int) -> str:
        """The URL the process will announce; a port already in use stops the start here, by name."""
        try:
            sock = bind_socket(self.settings.host, port)  # the options the servers bind with
        except OSError as exc:
            raise StartError(self._port_taken(name, port, exc.strerror or str(exc))) from None
        with sock:
            return base_url_for(sock, None)

    def _port_taken(self, name: str, port: int, reason: str) -> str:
        return f"{name}: port {port} on {self.settings.host} is not available ({reason})"

    def _refuse_second_mesh(self) -> None:
        state = read_up_state(self.home)
        if state is not None and state.supervisor_pid != os.getpid():
            raise StartError(f"a mesh is already up in {self.home} (mesh up pid {state.supervisor_pid}); stop it first")

    async def _launch(self, child: _Child, env: dict[str, str], stop: asyncio.Event,
                      registry: RegistryClient | None = None) -> None:
        child.proc = await self._spawn(child, env)
        self._watchers.append(asyncio.create_task(self._watch(child, env)))
        deadline = time.monotonic() + START_TIMEOUT
        await self._wait(child, stop, deadline, self._ready, "ready")
        if registry is not None:
            await self._wait(child, stop, deadline, lambda c: self._registered(c, registry), "registered")
        self.on_event(f"{child.name} up at {child.url} (pid {child.proc.pid}, log {child.log})")

    async def _spawn(self, child: _Child, env: dict[str, str]) -> asyncio.subprocess.Process:
        with open(child.log, "ab") as log:
            child.log_start = log.tell()
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} mesh {' '.join(child.argv)}\n".encode())
            log.flush()
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agents.cli", *child.argv, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True)

    async def _wait(self, child: _Child, stop: asyncio.Event, deadline: float,
                    check: Callable[[_Child], Awaitable[bool]], what: str) -> None:
        while not await check(child):
            if stop.is_set():
                raise StartInterrupted()
            if child.exit_code is not None:
                raise StartError(self._exit_message(child))
            if time.monotonic() > deadline:
                raise StartError(f"{child.name} was not {what} within {START_TIMEOUT:g} s\n{self._tail(child)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _POLL)

    async def _ready(self, child: _Child) -> bool:
        try:
            return (await self._http.get(child.url + "/readyz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _registered(self, child: _Child, registry: RegistryClient) -> bool:
        instances = await self._instances(registry)
        instance = None if instances is None else _instance_of(child, instances)
        return instance is not None and instance.state is InstanceState.healthy

    def _exit_message(self, child: _Child) -> str:
        tail = self._tail(child)
        if "address already in use" in tail.lower():  # lost a race for the port after our check
            return self._port_taken(child.name, child.port, "Address already in use")
        return f"{child.name} {_exit_phrase(child.exit_code)} while starting; the end of {child.log}:\n{tail}"

    def _tail(self, child: _Child) -> str:
        try:
            with open(child.log, "rb") as log:
                log.seek(child.log_start)
                lines = log.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return "  (no log)"
        return "\n".join(f"  {line}" for line in lines[-LOG_TAIL_LINES:])

    # -- while up -------------------------------------------------------------------------------

    async def _watch(self, child: _Child, env: dict[str, str]) -> None:
        """Report a process that exits on its own while the mesh is up; restart it once."""
        while child.proc is not None:
            code = await child.proc.wait()
            if self._stopping or not self._up:
                return  # being stopped; or still starting, and start() reports it
            self.on_event(f"{child.name} {_exit_phrase(code)} (log {child.log})")
            if child.restarts >= 1:
                self.on_event(f"{child.name} stays down: it was restarted once already")
                return
            child.restarts += 1
            child.restarting = True
            self.on_event(f"restarting {child.name} (once)")
            try:
                child.proc = await self._spawn(child, env)
                await self._wait(child, self._halt, time.monotonic() + START_TIMEOUT, self._ready, "ready")
            except StartError as exc:
                self.on_event(f"{child.name} did not come back: {str(exc).splitlines()[0]}")
                if child.exit_code is not None:
                    return
                continue  # running but not ready: keep watching it
            except StartInterrupted:
                pass
            finally:
                child.restarting = False
            if self._stopping:  # stop() may have passed this child while it was being restarted
                await self._terminate(child)
                return
            self._write_up_state(self.up_state())
            self.on_event(f"{child.name} up again at {child.url} (pid {child.proc.pid})")

    def up_state(self) -> UpState:
        return UpState(supervisor_pid=os.getpid(), registry_url=self.registry.url,
                       processes=[c.info() for c in self.children if c.proc is not None])

    def _write_up_state(self, state: UpState) -> None:
        path = up_state_path(self.home)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(state.model_dump_json(indent=2))
        os.replace(temporary, path)  # readers never see half a file

    async def status(self) -> MeshStatus:
        """Each process's state, and what the registry says about each agent."""
        async with RegistryClient(self.registry.url, http=self._http) as registry:
            instances = await self._instances(registry)
        rows = []
        for child in self.children:
            instance = None if instances is None else _instance_of(child, instances)
            if child is self.registry:
                health = "-"
            elif instances is None:
                health = "unknown"
            else:
                health = instance.state.value if instance else "absent"
            rows.append(ProcessStatus(
                name=child.name, role=child.role, url=child.url, pid=child.proc.pid if child.proc else None,
                process=child.process_state(), registry=health, in_flight=instance.in_flight if instance else None,
                restarts=child.restarts))
        return MeshStatus(processes=rows)

    async def _instances(self, registry: RegistryClient) -> list[InstanceRecord] | None:
        """Every instance the registry holds, evicted ones too; None when it does not answer."""
        try:
            records = await registry.find(all=True, limit=1000)
        except RegistryError:
            return None
        return [instance for record in records for instance in record.instances]

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Agents in reverse start order (each deregisters), then the registry; up.json goes."""
        self._stopping = True
        self._halt.set()
        up_state_path(self.home).unlink(missing_ok=True)
        for child in [*reversed(self.agents), self.registry]:
            await self._terminate(child)
        # each watcher ends once its process has; one caught restarting stops its new process itself
        await asyncio.gather(*self._watchers, return_exceptions=True)
        await self._http.aclose()

    async def _terminate(self, child: _Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            clean = code in (0, -signal.SIGTERM)  # the latter: stopped before it had set up its handler
            self.on_event(f"{child.name} stopped" + ("" if clean else f" ({_exit_phrase(code)})"))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            self.on_event(f"{child.name} killed: it did not stop within {STOP_TIMEOUT:g} s")


def _instance_of(child: _Child, instances: list[InstanceRecord]) -> InstanceRecord | None:
    """The registry's record of this process: by URL; an old run's record at the same URL loses to a healthy one."""
    mine = [i for i in instances if i.url.rstrip("/") == child.url]
    mine.sort(key=lambda i: (i.state is InstanceState.healthy, i.registered_at), reverse=True)
    return mine[0] if mine else None


def _describe_exit(code: int | None) -> str:
    """``1``, or the signal's name for a process killed by one (asyncio reports ``-9``)."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return str(code)


def _exit_phrase(code: int | None) -> str:
    described = _describe_exit(code)
    return f"was killed by {described}" if described.startswith("SIG") else f"exited with code {described}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
