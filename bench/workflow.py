"""Workflow benchmark: a 4-step hand-off run by the coordinator vs. the same 4 hops driven by the client.

    python bench/workflow.py                 # full run, ~2 min (each extra variant: ~+1 min)
    python bench/workflow.py --quick         # ~30 s smoke run
    python bench/workflow.py --postgres postgresql://postgres@127.0.0.1:5432/test   # + a PostgreSQL row

Processes (each its own, like ``hop.py``): a registry (``mesh registry``), the four agents of
``bench/workflow_agents.py`` (``mesh serve``, defaults but ``MESH_TASK_STORE=memory``, as hop.py's
runtime row) and one coordinator per variant (``mesh serve agents.coordination.coordinator:agent``,
its defaults: SQLite workflow store, SQLite A2A task store, tracing on), all in a fresh temporary
``MESH_HOME``. Two ways to get the same work done, side by side in one run:

* **mesh**: one A2A ``SendMessage`` to the coordinator, data part ``{"skill": "run_plan",
  "arguments": {"plan": …}}``; the plan is step1 → step4, each step's arguments filled by the
  coordinator from the previous step's output (agents found in the registry by name);
* **bare**: the client calls step1 … step4 itself, four ``SendMessage`` in sequence, each with
  the previous output: the sum of the bare hops, no coordinator.

Every reply is checked (the final value and trail prove each step ran, in order); a task that
fails is counted (column "failed") and the run goes on, any other bad reply or a hang ends it.
Method as in ``hop.py``: servers pinned to core 0, this client to core 1, raw HTTP/1.1 keep-alive
connections. Each round measures, for concurrency 1, 16 and 64 in turn, every row back to back
(order alternating between rounds). In a window the virtual users run workflows back to back and
start no new one after a fixed time; the window ends when the last one finishes, and all of it
counts: workflows/s = completed / elapsed, server CPU (``/proc``, every thread) over the same span.
At concurrency 64 a mesh workflow takes seconds, so a start-up period and a drain excluded from the
count would cost as much again in waiting; included, they keep the figures exact for CPU per
workflow and close for throughput (the servers stay saturated until the last few finish).
Rows: p50/p99 from all rounds' latencies pooled, the rest medians over rounds; ratios are medians
of per-round ratios. Orchestration overhead per step = (p50 mesh − p50 bare) / 4: it holds the
coordinator's own A2A hop (request in, task store writes, reply out), its workflow store writes and
its four outgoing calls, i.e. everything the mesh path does that the bare path does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: the repository's packages, as servers.py does
    sys.path.insert(0, str(HERE.parent))

from hop import (  # noqa: E402
    CLIENT_CORE, RESULTS, ROOT, SERVER_CORE, SERVER_ENV, WORKLOADS, BadReply, Connection, Server, _client_cpu,
    environment, free_port, percentile, pin_process,
)
from workflow_agents import STAGES, expected  # noqa: E402

from protocols.a2a_results import outcome_of  # noqa: E402
from protocols.registry_client import RegistryClient, read_local_token  # noqa: E402

COORDINATOR = "agents.coordination.coordinator:agent"
TRAIL = "w"
WORKFLOW_TIMEOUT_S = 60.0  # hang guard per workflow: a stuck server ends the run instead of hanging it
CONCURRENCY = (1, 16, 64)
STEPS = len(STAGES)
TARGET_MS = 2.0  # orchestration overhead per step, p50 at concurrency 1


# --------------------------------------------------------------------------- the two paths


def plan_for(n: int) -> dict[str, Any]:
    """step1 → step4; step1 gets literal arguments, each later step its arguments from the one before."""
    steps = [{"id": f"s{k}", "agent": f"step{k}", "skill": "advance", "arguments": {},
              "depends_on": [f"s{k - 1}"] if k > 1 else []} for k in STAGES]
    steps[0]["arguments"] = {"value": n, "trail": TRAIL}
    return {"name": "bench-chain", "steps": steps, "answer": "{value} {trail}"}


def _request(port: int, data: dict[str, Any]) -> bytes:
    message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"data": data}]}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}},
                      separators=(",", ":")).encode()
    head = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in WORKLOADS["a2a"].headers),
            f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class TaskFailed(Exception):
    """A well-formed reply whose task did not complete: counted (column "failed"), the run goes on."""


async def _send(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """One blocking SendMessage; a completed task, else TaskFailed (task) or BadReply (anything else)."""
    status, body = await conn.send(_request(conn.port, data))
    reply = json.loads(body) if status == 200 else {}
    task = reply.get("result", {}).get("task")
    if task is None:
        raise BadReply(f"port {conn.port}: HTTP {status}: {body[:600]!r}")
    outcome = outcome_of(reply["result"])
    if outcome.state != "completed":
        raise TaskFailed(f"port {conn.port}: task {outcome.state}: {(outcome.text or '')[:200]}")
    return task


async def bare_workflow(conns: list[Connection], n: int) -> None:
    arguments: Any = {"value": n, "trail": TRAIL}
    for conn in conns:  # step1 … step4, each fed the previous output
        arguments = outcome_of({"task": await _send(conn, {"skill": "advance", "arguments": arguments})}).output
    if arguments != expected(n, TRAIL):
        raise BadReply(f"bare chain for {n} ended with {arguments!r}")


async def mesh_workflow(conns: list[Connection], n: int) -> None:
    task = await _send(conns[0], {"skill": "run_plan", "arguments": {"plan": plan_for(n)}})
    answers = [a["parts"][0].get("text") for a in task.get("artifacts", []) if a.get("name") == "answer"]
    final = expected(n, TRAIL)
    if answers != [f"{final['value']} {final['trail']}"]:
        raise BadReply(f"workflow {n} answered {answers!r}: {json.dumps(task)[:600]}")


# --------------------------------------------------------------------------- processes


@dataclass
class MeshProcess(Server):
    """A ``mesh`` command (registry, agent, coordinator) as a process; CPU, readiness and stop from hop.Server."""

    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        env = {**os.environ, **SERVER_ENV, "MESH_LOG_LEVEL": "WARNING", **self.env}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, *self.argv], cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)


def stop_all(processes: list[MeshProcess], timeout: float = 15) -> None:
    """SIGTERM every one at once, then wait (each deregisters, so one by one would take long); kill leftovers."""
    for p in processes:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in processes:
        if p.proc is None:
            continue
        try:
            p.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(10)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    coordinator: str | None  # the coordinator process this row talks to; None: the bare path


VARIANTS = {  # coordinator variant → (row label, environment on top of the defaults)
    "sqlite": ("mesh: run_plan via coordinator (defaults: SQLite workflow + task store)", {}),
    "memstore": ("mesh: coordinator, A2A task store in memory", {"MESH_TASK_STORE": "memory"}),
    "postgres": ("mesh: coordinator, PostgreSQL workflow store", {}),  # MESH_WORKFLOW_DB added at run time
}
BARE = Row("bare", "bare: client calls step1..step4 (4 × SendMessage)", None)


class Mesh:
    """Registry, agents and coordinators under one temporary MESH_HOME; ``rows`` say what to measure."""

    def __init__(self, home: Path, variants: list[str], postgres_url: str | None) -> None:
        self.home = home
        port = free_port()
        self.registry = MeshProcess("registry", port, home / "registry.log", env={"MESH_HOME": str(home)},
                                    argv=["-m", "agents.cli", "registry", "--port", str(port)])
        agents = f"{HERE / 'workflow_agents.py'}"
        self.agents = [self._serve(f"step{n}", f"{agents}:step{n}", home, {"MESH_TASK_STORE": "memory"}) for n in STAGES]
        self.coordinators: dict[str, MeshProcess] = {}
        for variant in variants:
            env = dict(VARIANTS[variant][1])
            if variant == "postgres":
                assert postgres_url is not None
                env["MESH_WORKFLOW_DB"] = postgres_url
            chome = home / f"coordinator-{variant}"  # own state: two coordinators must not share SQLite files
            self.coordinators[variant] = self._serve(f"coordinator-{variant}", COORDINATOR, chome, env)
        self.rows = [BARE] + [Row(v, VARIANTS[v][0], v) for v in variants]

    def _serve(self, name: str, target: str, home: Path, env: dict[str, str]) -> MeshProcess:
        port = free_port()
        argv = ["-m", "agents.cli", "serve", target, "--port", str(port)]
        home.mkdir(parents=True, exist_ok=True)
        registry = f"http://127.0.0.1:{self.registry.port}"
        return MeshProcess(name, port, self.home / f"{name}.log", argv=argv,
                           env={"MESH_HOME": str(home), "MESH_REGISTRY_URL": registry, **env})

    @property
    def servers(self) -> list[MeshProcess]:
        return [*self.agents, *self.coordinators.values()]

    def all(self) -> list[MeshProcess]:
        return [*self.servers, self.registry]

    async def start(self) -> None:
        self.registry.start()
        await self.registry.wait_ready()
        token = await _registry_token(self.home)
        for p in self.servers:
            p.env["MESH_REGISTRY_TOKEN"] = token  # the coordinators' homes have no token file of their own
            p.start()
        await asyncio.gather(*(p.wait_ready() for p in self.servers))
        await self._wait_registered()

    async def _wait_registered(self, timeout: float = 60) -> None:
        wanted = {f"step{n}" for n in STAGES}
        async with RegistryClient(f"http://127.0.0.1:{self.registry.port}") as registry:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if wanted <= {a.name for a in await registry.find() if a.healthy}:
                    return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"agents {sorted(wanted)} not healthy in the registry after {timeout} s")

    def pin(self) -> None:
        os.sched_setaffinity(0, {CLIENT_CORE})
        for p in self.all():
            assert p.proc is not None
            pin_process(p.proc.pid, SERVER_CORE)

    def ports(self, row: Row) -> list[int]:
        return [a.port for a in self.agents] if row.coordinator is None else [self.coordinators[row.coordinator].port]

    def cpu(self) -> dict[str, float]:
        return {p.kind: p.cpu_seconds() for p in self.all()}


async def _registry_token(home: Path) -> str:
    for _ in range(100):
        token = read_local_token(home)
        if token:
            return token
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the registry wrote no token under {home}")


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: dict[int, float]  # counted time per window, by concurrency
    max_workflows: int  # per window: whichever bound comes first
    warmup_seconds: float


FULL = Plan(rounds=4, seconds={1: 1.5, 16: 2.0, 64: 6.0}, max_workflows=5000, warmup_seconds=1.5)
QUICK = Plan(rounds=1, seconds={1: 0.8, 16: 0.8, 64: 1.0}, max_workflows=2000, warmup_seconds=0.6)
_sequence = 0


@dataclass
class Window:
    concurrency: int
    seconds: float
    cpu_s: dict[str, float]  # per process over the counted span
    client_cpu_s: float
    latencies_ms: list[float] = field(repr=False)  # of the workflows that completed
    failed: int = 0  # workflows whose task failed
    errors: dict[str, int] = field(default_factory=dict)  # their messages

    def summary(self, row: Row) -> dict[str, float]:
        n = len(self.latencies_ms) + self.failed  # CPU per workflow: failed ones cost too
        agents = sum(v for k, v in self.cpu_s.items() if k.startswith("step"))
        coordinator = self.cpu_s.get(f"coordinator-{row.coordinator}", 0.0) if row.coordinator else 0.0
        per = 1000 / max(n, 1)
        return {
            "workflows": len(self.latencies_ms), "failed": self.failed, "seconds": round(self.seconds, 3),
            "wps": round(len(self.latencies_ms) / self.seconds, 2),
            "p50_ms": round(_pct(self.latencies_ms, 0.5), 3), "p99_ms": round(_pct(self.latencies_ms, 0.99), 3),
            "cpu_agents_ms": round(agents * per, 3), "cpu_coordinator_ms": round(coordinator * per, 3),
            "cpu_registry_ms": round(self.cpu_s["registry"] * per, 3),
            "cpu_total_ms": round((agents + coordinator + self.cpu_s["registry"]) * per, 3),
            "client_cpu_ms": round(self.client_cpu_s * per, 3),
        }


async def run_window(mesh: Mesh, row: Row, concurrency: int, seconds: float, max_workflows: int) -> Window:
    """``concurrency`` virtual users run workflows back to back and start no new one after ``seconds``
    (or ``max_workflows``); the window ends when the last one has finished. Everything in it counts:
    a start in step and a drain are cheaper to include than to wait out, see the module docstring."""
    workflow = bare_workflow if row.coordinator is None else mesh_workflow
    users = [[Connection(port) for port in mesh.ports(row)] for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for user in users for c in user))
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started_workflows, failed = [0], [0]
    stop_at = [float("inf")]

    async def user(conns: list[Connection]) -> None:
        global _sequence
        while time.perf_counter() < stop_at[0] and started_workflows[0] < max_workflows:
            started_workflows[0] += 1
            _sequence += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(WORKFLOW_TIMEOUT_S):
                    await workflow(conns, _sequence)
                latencies.append((time.perf_counter() - started) * 1000)
            except TaskFailed as failure:
                failed[0] += 1
                errors[str(failure)] = errors.get(str(failure), 0) + 1

    cpu_a, client_a, t0 = mesh.cpu(), _client_cpu(), time.perf_counter()
    stop_at[0] = t0 + seconds
    tasks = [asyncio.create_task(user(conns)) for conns in users]
    try:
        await asyncio.gather(*tasks)  # a BadReply or a hang (TimeoutError) ends the run
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for conns in users for c in conns))
    cpu_b, client_b, t1 = mesh.cpu(), _client_cpu(), time.perf_counter()
    return Window(concurrency, t1 - t0, {k: cpu_b[k] - cpu_a[k] for k in cpu_a}, client_b - client_a, latencies,
                  failed[0], errors)


# --------------------------------------------------------------------------- the run

Rounds = dict[str, dict[int, list[dict[str, Any]]]]  # row → concurrency → each round's summary
Pooled = dict[str, dict[int, list[float]]]  # row → concurrency → every round's latencies


def _pct(values: list[float], q: float) -> float:
    return percentile(values, q) if values else float("nan")


def summarise(rounds: list[dict[str, Any]], latencies: list[float]) -> dict[str, Any]:
    out = {k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0]}
    out.update(p50_ms=round(_pct(latencies, 0.5), 3), p99_ms=round(_pct(latencies, 0.99), 3),
               samples=len(latencies), failed=sum(r["failed"] for r in rounds))
    return out


def compare(mesh_rounds: list[dict[str, Any]], bare_rounds: list[dict[str, Any]], mesh: dict[str, Any],
            bare: dict[str, Any]) -> dict[str, float]:
    """mesh / bare: medians of per-round ratios (p99: of the pooled p99s); overhead per step from pooled p50s."""
    pairs = list(zip(mesh_rounds, bare_rounds, strict=True))
    ratio = {k: statistics.median(m[k] / b[k] if b[k] else float("nan") for m, b in pairs)
             for k in ("wps", "p50_ms", "cpu_total_ms")}
    return {
        "wps": round(ratio["wps"], 3), "p50_ms": round(ratio["p50_ms"], 3),
        "p99_ms": round(mesh["p99_ms"] / bare["p99_ms"], 3), "cpu_total_ms": round(ratio["cpu_total_ms"], 3),
        "overhead_per_step_p50_ms": round((mesh["p50_ms"] - bare["p50_ms"]) / STEPS, 3),
        "overhead_per_step_p50_ms_paired": round(
            statistics.median((m["p50_ms"] - b["p50_ms"]) / STEPS for m, b in pairs), 3),
        "cpu_per_step_ms": round((mesh["cpu_total_ms"] - bare["cpu_total_ms"]) / STEPS, 3),
    }


async def _measure(home: Path, plan: Plan, variants: list[str], postgres_url: str | None, pinned: bool,
                   levels: tuple[int, ...], started: float) -> tuple[Mesh, Rounds, Pooled, dict[str, dict[str, int]]]:
    """Start the mesh, warm it up, run the rounds; stop every process whatever happens."""
    mesh = Mesh(home, variants, postgres_url)
    raw: Rounds = {r.key: {c: [] for c in levels} for r in mesh.rows}
    pooled: Pooled = {r.key: {c: [] for c in levels} for r in mesh.rows}
    errors: dict[str, dict[str, int]] = {r.key: {} for r in mesh.rows}

    def note(row: Row, window: Window) -> Window:
        for text, n in window.errors.items():
            errors[row.key][text] = errors[row.key].get(text, 0) + n
        return window

    try:
        await mesh.start()
        print(f"  mesh up ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        if pinned:
            mesh.pin()
        for row in mesh.rows:  # warm-up: card fetches, connection pools, SQLite caches, code paths
            for c in (1, 16):  # (not 64: a mesh window there takes seconds)
                note(row, await run_window(mesh, row, c, plan.warmup_seconds / 2, plan.max_workflows))
        for round_no in range(plan.rounds):
            order = mesh.rows if round_no % 2 == 0 else mesh.rows[::-1]
            for c in levels:  # both paths at one concurrency back to back: paired within seconds
                for row in order:
                    window = note(row, await run_window(mesh, row, c, plan.seconds[c], plan.max_workflows))
                    raw[row.key][c].append(window.summary(row))
                    pooled[row.key][c].extend(window.latencies_ms)
            print(f"  round {round_no + 1}/{plan.rounds} done ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    finally:
        for log in home.glob("*.log"):  # keep the server logs beside the results
            (RESULTS / f"workflow-{log.name}").write_bytes(log.read_bytes())
        stop_all(mesh.servers)
        stop_all([mesh.registry])  # last: the others deregister on their way out
    return mesh, raw, pooled, errors


async def run(plan: Plan, variants: list[str], postgres: str | None, pin: bool,
              levels: tuple[int, ...] = CONCURRENCY) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    pinned = pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    load_before, started = os.getloadavg(), time.monotonic()
    scratch = await _scratch_database(postgres) if postgres else None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workflow-") as tmp:
            mesh, raw, pooled, errors = await _measure(Path(tmp), plan, variants, scratch[0] if scratch else None,
                                                       pinned, levels, started)
    finally:
        if scratch:
            await _drop_database(postgres, scratch[1])  # type: ignore[arg-type]
    results = {r.key: {c: summarise(raw[r.key][c], pooled[r.key][c]) for c in levels} for r in mesh.rows}
    ratios = {r.key: {c: compare(raw[r.key][c], raw["bare"][c], results[r.key][c], results["bare"][c]) for c in levels}
              for r in mesh.rows if r.coordinator}
    env = environment(pinned)
    env.pop("mcp_client_mode", None)
    env["client"] = "raw HTTP/1.1 keep-alive connections (asyncio streams); bare: 4 per virtual user, mesh: 1"
    return {
        "environment": env, "plan": asdict(plan), "rows": {r.key: r.label for r in mesh.rows},
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "duration_s": round(time.monotonic() - started, 1), "results": results, "ratios": ratios,
        "failures": {k: v for k, v in errors.items() if v}, "rounds": raw,
    }


async def _scratch_database(url: str) -> tuple[str, str]:
    """A database of its own on the given server (created here, dropped at the end): nobody's tables are touched."""
    import asyncpg

    name = f"bench_workflow_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(url)._replace(path="/" + name)), name


async def _drop_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --------------------------------------------------------------------------- output


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def render(report: dict[str, Any]) -> str:
    rows, results, ratios = report["rows"], report["results"], report["ratios"]
    levels = list(results["bare"])
    lines = ["| conc. | path | workflows/s | p50 (ms) | p99 (ms) | CPU/workflow: agents (ms) | coordinator (ms) "
             "| total (ms) | failed |", "|---|---|---|---|---|---|---|---|---|"]
    for c in levels:
        for key, label in rows.items():
            r = results[key][c]
            cells = [_fmt(r[k]) for k in ("wps", "p50_ms", "p99_ms", "cpu_agents_ms")]
            cells += [_fmt(r["cpu_coordinator_ms"]) if key != "bare" else "–", _fmt(r["cpu_total_ms"]),
                      f"{r['failed']}/{r['failed'] + r['samples']}"]
            lines.append(f"| {c} | {label} | " + " | ".join(cells) + " |")
        for key in ratios:
            q = ratios[key][c]
            lines.append(f"| {c} | *{key} / bare* | {q['wps']:.2f}× | {q['p50_ms']:.2f}× | {q['p99_ms']:.2f}× | | | "
                         f"{q['cpu_total_ms']:.2f}× | |")
    head = " | ".join([f"p50 c{c} (ms)" for c in levels] + [f"CPU c{c} (ms)" for c in levels])
    lines += ["", f"| overhead per step: coordinator | {head} | target ≤ {TARGET_MS:g} ms (p50 c1) |",
              "|---" * (2 * len(levels) + 2) + "|"]
    for key, q in ratios.items():
        cells = [f"{q[c]['overhead_per_step_p50_ms']:.2f}" for c in levels]
        cells += [f"{q[c]['cpu_per_step_ms']:.2f}" for c in levels]
        verdict = ("met" if q[1]["overhead_per_step_p50_ms"] <= TARGET_MS else "MISSED") if 1 in q else "–"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {verdict} |")
    for key, found in report["failures"].items():  # failed tasks, all windows (warm-up too)
        lines.append(f"\nfailed tasks, {key}: " + "; ".join(f"{n}× {text}" for text, n in found.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 short round (~30 s)")
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--variants", nargs="+", choices=["sqlite", "memstore"], default=["sqlite"],
                        help="coordinator variants to measure (memstore: its A2A task store in memory)")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="also a coordinator whose workflow store is on this PostgreSQL server (scratch database)")
    parser.add_argument("--concurrency", type=int, nargs="+", choices=CONCURRENCY, default=list(CONCURRENCY),
                        help="measure only these concurrency levels")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and client to cores")
    parser.add_argument("--output", type=Path, default=RESULTS / "workflow.json")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    variants = list(dict.fromkeys(args.variants + (["postgres"] if args.postgres else [])))
    signal.signal(signal.SIGTERM, _interrupt)  # a kill of the benchmark still stops every server
    try:
        report = asyncio.run(run(plan, variants, args.postgres, not args.no_pin, tuple(args.concurrency)))
    except KeyboardInterrupt:
        print("interrupted; every server was stopped", file=sys.stderr)
        return 130
    env = report["environment"]
    print(f"\nworkflow benchmark ({'quick' if args.quick else 'full'}: {plan.rounds} rounds, {report['duration_s']} s)")
    print(f"machine: {env['machine']}; Python {env['python']}; {env['pinned']}")
    print(f"load average before/after: {report['load_average_before_after']}")
    print("agents: mesh serve defaults + MESH_TASK_STORE=memory; coordinator: mesh serve defaults (SQLite stores, "
          "tracing on) unless the row says otherwise")
    print("p50/p99 pooled over rounds, the rest medians over rounds; ratios: medians of per-round ratios;\n"
          "overhead/step = (p50 mesh - p50 bare) / 4: the coordinator's own A2A hop, its task store and workflow "
          "store writes and its four outgoing calls\n")
    print(render(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
