"""Hop benchmark: one A2A SendMessage / one MCP tools/call through the runtime vs. the bare SDKs.

    python bench/hop.py            # full run, ~2.5 min: 3 interleaved rounds
    python bench/hop.py --quick    # ~30 s: 1 round, shorter windows

Each server (see ``bench/servers.py``) is its own process, started the same way (uvicorn, one worker,
127.0.0.1, the same environment, ``OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=false`` for all) and pinned
to core 0; this client is pinned to core 1. The client speaks raw HTTP/1.1 over keep-alive
connections, so its own cost is small and identical for both sides:

* A2A: JSON-RPC ``SendMessage`` (blocking) with one text part; the reply must be a completed task
  whose artifact echoes the text.
* MCP: ``tools/call echo`` as ``mcp.Client`` sends it in its default ``auto`` mode against an
  ``MCPServer`` (protocol 2026-07-28, sessionless; same headers, same body); the reply must echo.

Per server: a warm-up, then concurrency 1 (latency p50/p99) and concurrency 16 (requests/s), each
window bounded by a request count and a time. Server CPU per request is the utime+stime delta of
the server process (``/proc/<pid>/stat``) over the window, divided by the requests in it. Rounds
alternate the order of the servers; the reported figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SERVER_CORE, CLIENT_CORE = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SERVER_ENV = {"OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
MCP_VERSION = "2026-07-28"


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One kind of request: how to build it and how to tell a correct reply."""

    name: str
    path: str
    headers: tuple[tuple[str, str], ...]
    make_body: Callable[[int, str], bytes]
    quick_check: Callable[[bytes, bytes], bool]  # on every reply: cheap byte checks
    full_check: Callable[[dict[str, Any], str], bool]  # on warm-up replies: the parsed JSON

    def request(self, port: int, n: int, marker: str) -> bytes:
        body = self.make_body(n, marker)
        head = [f"POST {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head += [f"{k}: {v}" for k, v in self.headers]
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _a2a_body(n: int, marker: str) -> bytes:
    message = {"messageId": f"m-{marker}", "role": "ROLE_USER", "parts": [{"text": marker}]}
    return json.dumps(
        {"jsonrpc": "2.0", "id": n, "method": "SendMessage", "params": {"message": message}},
        separators=(",", ":"),
    ).encode()


def _a2a_full(reply: dict[str, Any], marker: str) -> bool:
    task = reply.get("result", {}).get("task", {})
    artifacts = task.get("artifacts", [])
    return (
        task.get("status", {}).get("state") == "TASK_STATE_COMPLETED"
        and len(artifacts) == 1
        and artifacts[0].get("parts") == [{"text": marker}]
    )


_MCP_META = {
    "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "mcp", "version": "0.1.0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _mcp_body(n: int, marker: str) -> bytes:
    params = {"name": "echo", "arguments": {"text": marker}, "_meta": _MCP_META}
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}, separators=(",", ":")).encode()


def _mcp_full(reply: dict[str, Any], marker: str) -> bool:
    result = reply.get("result", {})
    return result.get("isError") is False and result.get("content") == [{"type": "text", "text": marker}]


def _floor_body(n: int, marker: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "echo", "params": {"text": marker}}).encode()


WORKLOADS = {
    "a2a": Workload(
        "a2a",
        "/",
        (("Content-Type", "application/json"), ("A2A-Version", "1.0")),
        _a2a_body,
        # the text comes back twice: in the artifact and in the task history
        lambda body, m: b"TASK_STATE_COMPLETED" in body and body.count(m) >= 2,
        _a2a_full,
    ),
    "mcp": Workload(
        "mcp",
        "/mcp",
        (
            ("Accept", "application/json, text/event-stream"),
            ("Content-Type", "application/json"),
            ("Mcp-Protocol-Version", MCP_VERSION),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "echo"),
        ),
        _mcp_body,
        lambda body, m: b'"isError":false' in body and m in body,
        _mcp_full,
    ),
    "floor": Workload(
        "floor",
        "/",
        (("Content-Type", "application/json"),),
        _floor_body,
        lambda body, m: m in body,
        lambda reply, m: reply.get("result") == {"text": m},
    ),
}


# --------------------------------------------------------------------------- raw HTTP/1.1 client


class BadReply(RuntimeError):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            return status, await self.reader.readexactly(int(lower[at + 17 : end]))
        if b"\r\ntransfer-encoding: chunked" in lower:
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, b"".join(chunks)
                chunks.append(data[:-2])
        raise BadReply(f"reply without length: {head!r}")


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    kind: str
    port: int
    log: Path
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, pin: bool) -> None:
        args = [sys.executable, str(HERE / "servers.py"), self.kind, str(self.port)]
        if pin:
            args += ["--core", str(SERVER_CORE)]
        if self.profile is not None:
            args += ["--profile", str(self.profile)]
        env = {**os.environ, **SERVER_ENV}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.kind} did not listen in {timeout} s:\n{self.log.read_text()}")

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- measuring


@dataclass
class Window:
    concurrency: int
    requests: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, float]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(0.50), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "server_cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "server_busy": round(self.server_cpu_s / self.seconds, 3),
            "client_cpu_us_per_request": round(self.client_cpu_s / self.requests * 1e6, 1),
        }


_counter = 0


async def run_window(
    server: Server, workload: Workload, concurrency: int, max_requests: int, max_seconds: float, full_check: bool = False
) -> Window:
    """``concurrency`` connections, each sending requests back to back, until either bound is hit."""
    connections = [Connection(server.port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    latencies: list[float] = []
    budget = [max_requests]
    prefix = uuid.uuid4().hex[:8]

    async def loop(conn: Connection, stop_at: float) -> None:
        global _counter
        while budget[0] > 0 and time.perf_counter() < stop_at:
            budget[0] -= 1
            _counter += 1
            marker = f"echo-{prefix}-{_counter}"
            request = workload.request(server.port, _counter, marker)
            started = time.perf_counter()
            status, body = await conn.send(request)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200 or not workload.quick_check(body, marker.encode()):
                raise BadReply(f"{server.kind} {workload.name}: HTTP {status}: {body[:300]!r}")
            if full_check and not workload.full_check(json.loads(body), marker):
                raise BadReply(f"{server.kind} {workload.name}: wrong reply: {body[:600]!r}")

    cpu0, client0, t0 = server.cpu_seconds(), _client_cpu(), time.perf_counter()
    try:
        await asyncio.gather(*(loop(c, t0 + max_seconds) for c in connections))
    finally:
        elapsed = time.perf_counter() - t0
        cpu1, client1 = server.cpu_seconds(), _client_cpu()
        await asyncio.gather(*(c.close() for c in connections))
    return Window(concurrency, len(latencies), elapsed, cpu1 - cpu0, client1 - client0, latencies)


def _client_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class Plan:
    rounds: int
    warmup_requests: int
    warmup_seconds: float
    c1_requests: int
    c1_seconds: float
    c16_requests: int
    c16_seconds: float


FULL = Plan(rounds=3, warmup_requests=1000, warmup_seconds=1.0, c1_requests=5000, c1_seconds=3.0, c16_requests=20000, c16_seconds=3.0)
QUICK = Plan(rounds=1, warmup_requests=500, warmup_seconds=0.5, c1_requests=2000, c1_seconds=1.5, c16_requests=8000, c16_seconds=1.5)


async def measure(server: Server, workload: Workload, plan: Plan) -> dict[str, Any]:
    await run_window(server, workload, 16, plan.warmup_requests, plan.warmup_seconds, full_check=True)
    c1 = await run_window(server, workload, 1, plan.c1_requests, plan.c1_seconds)
    c16 = await run_window(server, workload, 16, plan.c16_requests, plan.c16_seconds)
    return {"c1": c1.summary(), "c16": c16.summary()}


# --------------------------------------------------------------------------- the run


# (row id, workload, server kind, side); "bare" rows are the denominators of the ratios
ROWS = [
    ("a2a runtime", "a2a", "runtime", "runtime"),
    ("a2a bare a2a-sdk", "a2a", "a2a-bare", "bare"),
    ("a2a runtime (SQLite store)", "a2a", "runtime-sqlite", "extra"),
    ("mcp runtime", "mcp", "runtime", "runtime"),
    ("mcp bare MCPServer", "mcp", "mcp-bare", "bare"),
    ("floor: Starlette echo", "floor", "floor", "extra"),
]
METRICS = [  # (key in the table, window, field, unit, lower is better)
    ("p50 c1 (ms)", "c1", "p50_ms", True),
    ("p99 c1 (ms)", "c1", "p99_ms", True),
    ("req/s c16", "c16", "rps", False),
    ("CPU/req c1 (µs)", "c1", "server_cpu_us_per_request", True),
    ("CPU/req c16 (µs)", "c16", "server_cpu_us_per_request", True),
]


def _median_row(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for window in ("c1", "c16"):
        keys = rounds[0][window].keys()
        merged[window] = {k: round(statistics.median(r[window][k] for r in rounds), 3) for k in keys}
    return merged


def render(results: dict[str, dict[str, Any]], ratios: dict[str, dict[str, float]]) -> str:
    head = "| workload / server | " + " | ".join(m[0] for m in METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 1)]
    for row_id, workload, kind, side in ROWS:
        if row_id not in results:
            continue
        cells = [_fmt(results[row_id][w][f]) for _, w, f, _ in METRICS]
        lines.append(f"| {row_id} | " + " | ".join(cells) + " |")
        if side == "bare" and workload in ratios:
            cells = [f"**{ratios[workload][name]:.2f}×**" for name, *_ in METRICS]
            lines.append(f"| **{workload} ratio runtime/bare** | " + " | ".join(cells) + " |")
    if "a2a-sqlite" in ratios:
        cells = [f"{ratios['a2a-sqlite'][name]:.2f}×" for name, *_ in METRICS]
        lines.append("| a2a ratio runtime (SQLite)/bare | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def compute_ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    pairs = {"a2a": ("a2a runtime", "a2a bare a2a-sdk"), "mcp": ("mcp runtime", "mcp bare MCPServer")}
    pairs["a2a-sqlite"] = ("a2a runtime (SQLite store)", "a2a bare a2a-sdk")
    ratios = {}
    for name, (ours, bare) in pairs.items():
        if ours in results and bare in results:
            ratios[name] = {
                metric: results[ours][w][f] / results[bare][w][f] for metric, w, f, _ in METRICS
            }
    return ratios


def environment(pinned: bool) -> dict[str, Any]:
    versions = {}
    for package in ("a2a-sdk", "mcp", "starlette", "uvicorn", "protobuf", "sqlalchemy", "aiosqlite"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {cpu}",
        "packages": versions,
        "server_env": SERVER_ENV,
        "pinned": f"servers on core {SERVER_CORE}, client on core {CLIENT_CORE}" if pinned else "not pinned",
        "http_server": "uvicorn, 1 worker, asyncio loop, h11/httptools as installed, access log off, 127.0.0.1",
        "client": "raw HTTP/1.1 keep-alive connections (asyncio streams), one request in flight per connection",
        "mcp_client_mode": f"tools/call as mcp.Client auto mode sends it: protocol {MCP_VERSION}, sessionless",
    }


async def run(plan: Plan, only: set[str] | None) -> dict[str, Any]:
    pinned = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    if pinned:
        os.sched_setaffinity(0, {CLIENT_CORE})
    rows = [r for r in ROWS if only is None or r[1] in only]
    kinds = sorted({kind for _, _, kind, _ in rows}, key=[r[2] for r in ROWS].index)
    RESULTS.mkdir(parents=True, exist_ok=True)
    servers = {kind: Server(kind, free_port(), RESULTS / f"server-{kind}.log") for kind in kinds}
    raw: dict[str, list[dict[str, Any]]] = {row[0]: [] for row in rows}
    started = time.monotonic()
    try:
        for server in servers.values():
            server.start(pinned)
        await asyncio.gather(*(s.wait_ready() for s in servers.values()))
        for round_no in range(plan.rounds):
            order = rows if round_no % 2 == 0 else list(reversed(rows))
            for row_id, workload, kind, _ in order:
                result = await measure(servers[kind], WORKLOADS[workload], plan)
                raw[row_id].append(result)
                print(
                    f"  round {round_no + 1}/{plan.rounds} {row_id:28} p50 {result['c1']['p50_ms']:6.2f} ms  "
                    f"{result['c16']['rps']:8.0f} req/s  CPU {result['c1']['server_cpu_us_per_request']:7.0f} µs/req",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
    results = {row_id: _median_row(rounds) for row_id, rounds in raw.items()}
    ratios = compute_ratios(results)
    return {
        "environment": environment(pinned),
        "plan": asdict(plan),
        "duration_s": round(time.monotonic() - started, 1),
        "results": results,
        "ratios": {k: {m: round(v, 3) for m, v in r.items()} for k, r in ratios.items()},
        "rounds": raw,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round (~30 s)")
    parser.add_argument("--only", choices=["a2a", "mcp", "floor"], action="append", help="run only these workloads")
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--output", type=Path, default=RESULTS / "hop.json")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    report = asyncio.run(run(plan, set(args.only) if args.only else None))
    env = report["environment"]
    table = render(report["results"], compute_ratios(report["results"]))
    print(f"\nhop benchmark ({'quick' if args.quick else 'full'}, {plan.rounds} round(s), {report['duration_s']} s)")
    print(f"machine: {env['machine']}; Python {env['python']}; {env['pinned']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()))
    print("server env (all servers): " + " ".join(f"{k}={v}" for k, v in SERVER_ENV.items()))
    print(f"client: {env['client']}; MCP: {env['mcp_client_mode']}")
    print("medians over rounds; runtime and bare rows use in-memory task stores\n")
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
