"""`mesh up` as a real process: a registry and two agents start, register, restart once, and stop cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agents.settings import MeshSettings
from agents.supervisor import UpState, read_up_state, up_state_path
from registry.service import default_db_url
from registry.store import AgentQuery, RegistryStore
from tests.support import ROOT, free_port

AGENTS = ("helpdesk", "testbench")  # tests/up_manifest.py: each named as its agent is


class MeshUp:
    """``mesh up --manifest tests.up_manifest:PROCESSES --no-table`` with its output in files."""

    def __init__(self, home: Path, broken: bool = False, ports: tuple[int, int] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.home = home
        self.ports = ports or (free_port(), free_port())
        self.registry_port = free_port()
        env = {**os.environ, "MESH_HOME": str(home), "MESH_TEST_UP_PORTS": ",".join(map(str, self.ports)),
               **({"MESH_TEST_UP_BROKEN": "1"} if broken else {})}
        home.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = home.parent / "up.out", home.parent / "up.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "up", "--manifest", "tests.up_manifest:PROCESSES",
                 "--registry-port", str(self.registry_port), "--no-table", *args],
                cwd=ROOT, env=env, stdout=out, stderr=err)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_up(self, timeout: float = 40) -> UpState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"mesh up exited {self.proc.returncode}:\n{self.stdout}\n{self.stderr}"
            state = read_up_state(self.home)
            if state is not None:
                return state
            time.sleep(0.1)
        raise TimeoutError(f"no up.json in {timeout} s:\n{self.stdout}\n{self.stderr}")

    def wait_output(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stdout:
            assert time.monotonic() < deadline, f"{text!r} not printed in {timeout} s:\n{self.stdout}\n{self.stderr}"
            time.sleep(0.1)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def mesh_up(tmp_path):
    started: list[MeshUp] = []

    def start(**kwargs: object) -> MeshUp:
        started.append(MeshUp(tmp_path / "home", **kwargs))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for up in started:  # a failed assertion must not leave a mesh running
        if up.proc.poll() is None:
            up.interrupt()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def registered(registry_url: str) -> dict[str, list[dict]]:
    """Agent name -> its instances, as the registry reports them (evicted ones too)."""
    agents = httpx.get(f"{registry_url}/v1/agents", params={"all": "true"}, timeout=5).json()["agents"]
    return {agent["name"]: agent["instances"] for agent in agents}


async def stored_instances(home: Path) -> list:
    """What the stopped registry's store still holds: instances nobody deregistered."""
    store = RegistryStore(default_db_url(MeshSettings.from_env({}, home=home)))
    try:
        return [i for record in await store.find(AgentQuery(include_all=True)) for i in record.instances]
    finally:
        await store.close()


async def test_mesh_up_starts_registers_and_stops_everything_on_ctrl_c(mesh_up):
    up = mesh_up()
    state = up.wait_up()

    assert [p.name for p in state.processes] == ["registry", "helpdesk", "testbench"]
    assert state.url_of("helpdesk") == f"http://127.0.0.1:{up.ports[0]}"
    assert state.registry_url == f"http://127.0.0.1:{up.registry_port}"
    for process in state.processes:
        assert alive(process.pid) and Path(process.log).is_file(), process
    assert Path(state.processes[1].log) == up.home.resolve() / "logs" / "helpdesk.log"
    # up.json is written once every agent is registered and healthy: no waiting needed here
    instances = registered(state.registry_url)
    for name in AGENTS:
        assert [(i["url"], i["state"]) for i in instances[name]] == [(state.url_of(name), "healthy")]
    up.wait_output("testbench  ")  # the table, printed once with --no-table (stdout is no tty either)
    table = up.stdout
    assert re.search(r"^NAME\s+URL\s+PID\s+PROCESS\s+REGISTRY\s+IN-FLIGHT\s+ROLE$", table, re.M)
    for name in AGENTS:
        assert re.search(rf"^{name}\s+{re.escape(state.url_of(name) or '')}\s+\d+\s+running\s+healthy\s+0\s+", table, re.M)

    assert up.interrupt() == 0, up.stderr
    for process in state.processes:
        assert not alive(process.pid), process
    assert not up_state_path(up.home).exists()
    assert await stored_instances(up.home) == []  # every agent deregistered before the registry stopped
    with pytest.raises(httpx.ConnectError):
        httpx.get(state.registry_url + "/readyz", timeout=2)
    stopping = up.stdout[up.stdout.index("stopping"):]
    assert stopping.index("testbench stopped") < stopping.index("helpdesk stopped") < stopping.index("registry stopped")


async def test_a_process_that_dies_is_restarted_once_then_left_down(mesh_up):
    up = mesh_up(args=("--only", "testbench"))
    state = up.wait_up()
    assert [p.name for p in state.processes] == ["registry", "testbench"]
    first = state.processes[1]
    os.kill(first.pid, signal.SIGKILL)
    up.wait_output("testbench up again")
    second = read_up_state(up.home).processes[1]  # type: ignore[union-attr]
    assert second.pid != first.pid and alive(second.pid)
    assert httpx.get(second.url + "/readyz", timeout=5).status_code == 200

    os.kill(second.pid, signal.SIGKILL)
    up.wait_output("testbench stays down")
    assert "testbench was killed by SIGKILL" in up.stdout and up.stdout.count("restarting testbench (once)") == 1
    assert up.interrupt() == 0, up.stderr


def test_a_port_in_use_is_named_and_nothing_starts(mesh_up):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = mesh_up(ports=(free_port(), port))
        assert up.proc.wait(30) != 0
    assert up.stderr.strip() == f"mesh up: testbench: port {port} on 127.0.0.1 is not available (Address already in use)"
    assert "registry up" not in up.stdout and not up_state_path(up.home).exists()


def test_a_process_that_fails_to_start_stops_the_others(mesh_up):
    up = mesh_up(broken=True)
    assert up.proc.wait(40) != 0
    assert "testbench exited with code 2 while starting" in up.stderr
    assert "cannot import tests.no_such_module" in up.stderr  # the end of its log
    started = [int(pid) for pid in re.findall(r"up at \S+ \(pid (\d+)", up.stdout)]
    assert len(started) == 2  # the registry and helpdesk were up ...
    assert not any(alive(pid) for pid in started)  # ... and were stopped
    assert not up_state_path(up.home).exists()
