"""Hop benchmark: one A2A SendMessage / one MCP tools/call through the runtime vs. the bare SDKs.

    python bench/hop.py            # full run, ~2.5 min (make bench)
    python bench/hop.py --quick    # ~35 s
    python bench/hop.py --only a2a --kinds runtime a2a-bare --rounds 12   # a subset

Each server (``bench/servers.py``) is its own process, started the same way (uvicorn, one worker,
127.0.0.1, the same environment, ``OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=false`` for all, as the
runtime sets by default), pinned to core 0; this client is pinned to core 1. The client speaks raw
HTTP/1.1 over keep-alive connections, so its own cost is small and the same for every server:

* A2A: JSON-RPC ``SendMessage`` (blocking) with one text part; the reply must be a completed task
  whose one artifact echoes the text.
* MCP: ``tools/call echo`` exactly as ``mcp.Client`` sends it in its default ``auto`` mode against
  an ``MCPServer`` (protocol 2026-07-28, sessionless; same headers, same body); the reply must echo.

Method: every server gets one warm-up; then each round measures every row back to back, a window
at concurrency 1 (latency) and one at concurrency 16 (throughput), each bounded by a request count
and a time. Server CPU per request is the utime+stime delta of the whole server process
(``/proc/<pid>/stat``, all threads) over the window, divided by the requests in it. Rows report the
median over rounds (p50/p99 from the latencies of all rounds pooled); ratios are the median of the
per-round ratios, each round measuring both sides within seconds of each other, which cancels most
of the drift of a shared machine.
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


def _bench_token() -> str:
    """A JWT the secured rows accept (the bare servers and unsecured rows ignore the header)."""
    import jwt

    from servers import BENCH_CALLER, BENCH_JWT_SECRET  # bench/ is this script's directory

    return jwt.encode({"sub": BENCH_CALLER, "aud": "echo", "exp": int(time.time()) + 86400}, BENCH_JWT_SECRET,
                      algorithm="HS256")


BENCH_TOKEN = _bench_token()


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One kind of request: how to build it and how to tell a correct reply."""

    name: str
    path: str
    headers: tuple[tuple[str, str], ...]
    make_body: Callable[[int, str], bytes]
    quick_check: Callable[[bytes, bytes], bool]  # every reply: cheap byte checks
    full_check: Callable[[dict[str, Any], str], bool]  # warm-up replies: the parsed JSON

    def request(self, port: int, n: int, marker: str) -> bytes:
        body = self.make_body(n, marker)
        head = [f"POST {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head += [f"{k}: {v}" for k, v in self.headers]
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _a2a_body(n: int, marker: str) -> bytes:
    message = {"messageId": f"m-{marker}", "role": "ROLE_USER", "parts": [{"text": marker}]}
    return _compact({"jsonrpc": "2.0", "id": n, "method": "SendMessage", "params": {"message": message}})


def _a2a_full(reply: dict[str, Any], marker: str) -> bool:
    task = reply.get("result", {}).get("task", {})
    artifacts = task.get("artifacts", [])
    return (
        task.get("status", {}).get("state") == "TASK_STATE_COMPLETED"
        and len(artifacts) == 1
        and artifacts[0].get("parts") == [{"text": marker}]
    )


_MCP_META = {  # what mcp.Client (auto mode, 2026-07-28) puts in every request's _meta
    "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "mcp", "version": "0.1.0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _mcp_body(n: int, marker: str) -> bytes:
    params = {"name": "echo", "arguments": {"text": marker}, "_meta": _MCP_META}
    return _compact({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params})


def _mcp_full(reply: dict[str, Any], marker: str) -> bool:
    result = reply.get("result", {})
    return result.get("isError") is False and result.get("content") == [{"type": "text", "text": marker}]


WORKLOADS = {
    "a2a": Workload(
        "a2a",
        "/",
        (("Content-Type", "application/json"), ("A2A-Version", "1.0"), ("Authorization", f"Bearer {BENCH_TOKEN}")),
        _a2a_body,
        # the text comes back twice: in the artifact and in the task's history
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
            ("Authorization", f"Bearer {BENCH_TOKEN}"),  # checked by the secured rows only
        ),
        _mcp_body,
        lambda body, m: b'"isError":false' in body and m in body,
        _mcp_full,
    ),
    "floor": Workload(
        "floor",
        "/",
        (("Content-Type", "application/json"),),
        lambda n, m: _compact({"jsonrpc": "2.0", "id": n, "method": "echo", "params": {"text": m}}),
        lambda body, m: m in body,
        lambda reply, m: reply.get("result") == {"text": m},
    ),
}


# --------------------------------------------------------------------------- raw HTTP/1.1 client


class BadReply(RuntimeError):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time (Content-Length or chunked replies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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
        raise BadReply(f"reply without a length: {head!r}")


# --------------------------------------------------------------------------- servers


def pin_process(pid: int, core: int) -> None:
    """Pin every thread of ``pid``; threads it starts later inherit the mask of their creator."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class Server:
    kind: str
    port: int
    log: Path
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, str(HERE / "servers.py"), self.kind, str(self.port)]
        if self.profile is not None:
            args += ["--profile", str(self.profile)]
        env = {**os.environ, **SERVER_ENV}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    async def wait_ready(self, timeout: float = 90) -> None:
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
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)

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
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(0.50), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "server_cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "server_busy": round(self.server_cpu_s / self.seconds, 3),
            "client_cpu_us_per_request": round(self.client_cpu_s / self.requests * 1e6, 1),
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_sequence = 0


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
        global _sequence
        while budget[0] > 0 and time.perf_counter() < stop_at:
            budget[0] -= 1
            _sequence += 1
            marker = f"echo-{prefix}-{_sequence}"
            request = workload.request(server.port, _sequence, marker)
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


FULL = Plan(rounds=8, warmup_requests=3000, warmup_seconds=1.2, c1_requests=3000, c1_seconds=0.8, c16_requests=6000, c16_seconds=0.8)
QUICK = Plan(rounds=3, warmup_requests=1000, warmup_seconds=0.4, c1_requests=1500, c1_seconds=0.35, c16_requests=3000, c16_seconds=0.35)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Row:
    label: str
    workload: str
    kind: str
    baseline: str | None  # the row this one is compared with (its ratios' denominator)


ROWS = [
    Row("a2a runtime", "a2a", "runtime", "a2a bare a2a-sdk"),
    Row("a2a bare a2a-sdk", "a2a", "a2a-bare", None),
    Row("a2a runtime, tracing off", "a2a", "runtime-notrace", "a2a bare a2a-sdk"),
    Row("a2a runtime, sync def skill", "a2a", "runtime-sync", "a2a bare a2a-sdk"),
    Row("a2a runtime, SQLite store", "a2a", "runtime-sqlite", "a2a bare a2a-sdk"),
    Row("a2a runtime, secured", "a2a", "runtime-secured", "a2a runtime"),
    Row("mcp runtime", "mcp", "runtime", "mcp bare MCPServer"),
    Row("mcp bare MCPServer", "mcp", "mcp-bare", None),
    Row("mcp runtime, tracing off", "mcp", "runtime-notrace", "mcp bare MCPServer"),
    Row("mcp runtime, secured", "mcp", "runtime-secured", "mcp runtime"),
    Row("floor: Starlette echo", "floor", "floor", None),
]
# (column, window, field): what the table shows for each row, and the ratios
METRICS = [
    ("p50 c1 (ms)", "c1", "p50_ms"),
    ("p99 c1 (ms)", "c1", "p99_ms"),
    ("req/s c16", "c16", "rps"),
    ("CPU/req c1 (µs)", "c1", "server_cpu_us_per_request"),
    ("CPU/req c16 (µs)", "c16", "server_cpu_us_per_request"),
]
TARGET = 1.10  # runtime/bare, for CPU per request and p50


def summarise(rounds: list[dict[str, Any]], latencies: list[float]) -> dict[str, Any]:
    """Medians over rounds; p50/p99 at concurrency 1 from all rounds' latencies pooled."""
    out: dict[str, Any] = {}
    for window in ("c1", "c16"):
        keys = rounds[0][window].keys()
        out[window] = {k: round(statistics.median(r[window][k] for r in rounds), 3) for k in keys}
    out["c1"]["p50_ms"] = round(percentile(latencies, 0.50), 3)
    out["c1"]["p99_ms"] = round(percentile(latencies, 0.99), 3)
    out["c1"]["samples"] = len(latencies)
    return out


def paired_ratios(ours: list[dict[str, Any]], base: list[dict[str, Any]], pooled: tuple[list[float], list[float]]) -> dict[str, float]:
    """Median of per-round ratios (p99: ratio of the pooled p99s, a per-round p99 has too few samples)."""
    ratios = {}
    for column, window, key in METRICS:
        if key == "p99_ms":
            ratios[column] = percentile(pooled[0], 0.99) / percentile(pooled[1], 0.99)
        else:
            ratios[column] = statistics.median(a[window][key] / b[window][key] for a, b in zip(ours, base, strict=True))
    return {k: round(v, 3) for k, v in ratios.items()}


def render(rows: list[Row], results: dict[str, Any], ratios: dict[str, dict[str, float]]) -> str:
    lines = ["| workload / server | " + " | ".join(m[0] for m in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for row in rows:
        cells = [_fmt(results[row.label][w][k]) for _, w, k in METRICS]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines.append("| **ratios** (median of per-round ratios) | | | | | |")
    for row in rows:
        if row.label in ratios:
            cells = [f"{ratios[row.label][m[0]]:.2f}×" for m in METRICS]
            baseline = row.baseline.split(" ", 1)[1] if row.baseline else ""  # without the workload prefix
            lines.append(f"| {row.label} / {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def environment(pinned: bool) -> dict[str, Any]:
    versions = {}
    for package in ("a2a-sdk", "mcp", "starlette", "uvicorn", "h11", "protobuf", "sqlalchemy", "aiosqlite"):
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
        "pinned": f"servers on core {SERVER_CORE}, client on core {CLIENT_CORE}" if pinned else "not pinned (fewer than 2 cores)",
        "http_server": "uvicorn, 1 worker, asyncio loop, access log off, 127.0.0.1",
        "client": "raw HTTP/1.1 over keep-alive connections (asyncio streams), one request in flight per connection",
        "mcp_client_mode": f"tools/call as mcp.Client sends it in auto mode: protocol {MCP_VERSION}, sessionless",
    }


async def run(plan: Plan, rows: list[Row]) -> dict[str, Any]:
    pinned = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    kinds = list(dict.fromkeys(row.kind for row in rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    servers = {kind: Server(kind, free_port(), RESULTS / f"server-{kind}.log") for kind in kinds}
    raw: dict[str, list[dict[str, Any]]] = {row.label: [] for row in rows}
    pooled: dict[str, list[float]] = {row.label: [] for row in rows}
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        for server in servers.values():
            server.start()  # unpinned: start-up (imports) runs on both cores
        await asyncio.gather(*(s.wait_ready() for s in servers.values()))
        if pinned:
            os.sched_setaffinity(0, {CLIENT_CORE})
            for server in servers.values():
                assert server.proc is not None
                pin_process(server.proc.pid, SERVER_CORE)
        for row in rows:
            await run_window(servers[row.kind], WORKLOADS[row.workload], 16, plan.warmup_requests, plan.warmup_seconds, full_check=True)
        for round_no in range(plan.rounds):
            order = rows if round_no % 2 == 0 else rows[::-1]
            for row in order:
                server, workload = servers[row.kind], WORKLOADS[row.workload]
                c1 = await run_window(server, workload, 1, plan.c1_requests, plan.c1_seconds)
                c16 = await run_window(server, workload, 16, plan.c16_requests, plan.c16_seconds)
                raw[row.label].append({"c1": c1.summary(), "c16": c16.summary()})
                pooled[row.label].extend(c1.latencies_ms)
            print(f"  round {round_no + 1}/{plan.rounds} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    results = {label: summarise(raw[label], pooled[label]) for label in raw}
    ratios = {
        row.label: paired_ratios(raw[row.label], raw[row.baseline], (pooled[row.label], pooled[row.baseline]))
        for row in rows
        if row.baseline in raw
    }
    return {
        "environment": environment(pinned),
        "plan": asdict(plan),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "duration_s": round(time.monotonic() - started, 1),
        "results": results,
        "ratios": ratios,
        "target": {"max_ratio": TARGET, "columns": ["p50 c1 (ms)", "CPU/req c1 (µs)", "CPU/req c16 (µs)"]},
        "rounds": raw,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 short rounds (~35 s)")
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append", help="run only these workloads")
    parser.add_argument("--kinds", nargs="+", default=None, help="run only the rows of these server kinds")
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--output", type=Path, default=RESULTS / "hop.json")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    rows = [r for r in ROWS if (not args.only or r.workload in args.only) and (not args.kinds or r.kind in args.kinds)]
    report = asyncio.run(run(plan, rows))
    env = report["environment"]
    print(f"\nhop benchmark ({'quick' if args.quick else 'full'}: {plan.rounds} rounds, {report['duration_s']} s)")
    print(f"machine: {env['machine']}; Python {env['python']}; {env['pinned']}")
    print(f"load average before/after: {report['load_average_before_after']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()))
    print("server env (every server): " + " ".join(f"{k}={v}" for k, v in SERVER_ENV.items()))
    print(f"client: {env['client']}\nMCP: {env['mcp_client_mode']}")
    print(
        "runtime rows run `mesh serve` with its defaults (tracing on, span store on) but an in-memory task store\n"
        "unless the row says otherwise; bare rows: in-memory task store; every echo is `async def`.\n"
        "p50/p99 are pooled over rounds, the other columns medians over rounds.\n"
    )
    print(render(rows, report["results"], report["ratios"]))
    misses = [
        f"{label}: {column} {value:.2f}×"
        for label, ratios in report["ratios"].items()
        if label in ("a2a runtime", "mcp runtime")
        for column, value in ratios.items()
        if column in report["target"]["columns"] and value > TARGET
    ]
    print(f"\ntarget runtime/bare <= {TARGET}× (p50, CPU/req): " + ("met" if not misses else "MISSED: " + "; ".join(misses)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"written: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
