"""Where a hop's server CPU goes: cProfile inside the server process for N requests.

    python bench/profile_hop.py a2a                 # runtime vs bare a2a-sdk, 2000 SendMessage each
    python bench/profile_hop.py mcp -n 3000         # runtime vs bare MCPServer
    python bench/profile_hop.py a2a --kinds runtime-sqlite

Each server runs as in ``bench/hop.py``; after a warm-up, SIGUSR1 starts the profiler, N requests
run at concurrency 1, SIGUSR2 stops it and writes ``bench/results/profile-<workload>-<kind>.prof``.
Prints, per server, the calls per request and the top functions by own time and by cumulative time,
then the modules (grouped by package) by own time per request. cProfile roughly doubles the CPU of
Python-heavy code, so read the shares, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hop import CLIENT_CORE, RESULTS, SERVER_CORE, WORKLOADS, Server, free_port, pin_process, run_window  # noqa: E402

PAIRS = {"a2a": ["runtime", "a2a-bare"], "mcp": ["runtime", "mcp-bare"], "floor": ["floor"]}


def _group(filename: str) -> str:
    """A package-level label for a source file."""
    if "site-packages/" in filename:
        rest = filename.split("site-packages/", 1)[1]
        parts = rest.split("/")
        return "/".join(parts[:2]) if parts[0] in ("a2a", "mcp", "starlette", "uvicorn", "google") else parts[0]
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    if "/work/" in filename or filename.startswith(str(Path.cwd())):
        return "ours:" + "/".join(Path(filename).parts[-2:])
    return "stdlib:" + Path(filename).stem


def gc_report(path: Path, requests: int) -> str:
    """The garbage collector's share: collections per generation and their time per request."""
    stats = json.loads(path.read_text())
    per_gen = ", ".join(
        f"gen{g}: {n} ({s / max(n, 1) * 1e3:.1f} ms each)" for g, (n, s) in enumerate(zip(stats["collections"], stats["seconds"]))
    )
    total = sum(stats["seconds"]) / requests * 1e6
    return (
        f"garbage collector: {total:.0f} µs per request; {per_gen}; "
        f"{stats['tracked_objects']:,} tracked objects, {stats['frozen_objects']:,} frozen"
    )


def report(path: Path, requests: int, top: int) -> str:
    stats = pstats.Stats(str(path))
    total_calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    out = io.StringIO()
    out.write(f"{total_calls / requests:,.0f} Python calls per request; total {stats.total_tt:.3f} s profiled\n")  # type: ignore[attr-defined]
    groups: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        groups[_group(filename)] += tottime
    out.write("\nown time by package (µs per request, share):\n")
    for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1])[:top]:
        out.write(f"  {seconds / requests * 1e6:8.0f}  {seconds / stats.total_tt:5.1%}  {name}\n")  # type: ignore[attr-defined]
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        buffer = io.StringIO()
        pstats.Stats(str(path), stream=buffer).sort_stats(key).print_stats(top)
        lines = buffer.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
        out.write(f"\ntop {top} by {title}:\n" + "\n".join(lines[start:]) + "\n")
    return out.getvalue()


async def profile(workload_name: str, kinds: list[str], requests: int, top: int) -> None:
    pinned = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    if pinned:
        os.sched_setaffinity(0, {CLIENT_CORE})
    workload = WORKLOADS[workload_name]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        out = RESULTS / f"profile-{workload_name}-{kind}.prof"
        out.unlink(missing_ok=True)
        server = Server(kind, free_port(), RESULTS / f"server-{kind}-profile.log", profile=out)
        server.start()
        try:
            await server.wait_ready()
            if pinned and server.proc is not None:
                pin_process(server.proc.pid, SERVER_CORE)
            await run_window(server, workload, 4, 500, 5.0, full_check=True)
            server.signal(signal.SIGUSR1)
            await asyncio.sleep(0.2)
            window = await run_window(server, workload, 1, requests, 120.0)
            server.signal(signal.SIGUSR2)
            deadline = time.monotonic() + 10
            while not out.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # let dump_stats finish writing
        finally:
            server.stop()
        print(f"\n===== {workload_name} / {kind}: {window.requests} requests at c1 under cProfile ({out.name})")
        print(gc_report(out.with_suffix(".gc.json"), window.requests))
        print(report(out, window.requests, top))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(PAIRS))
    parser.add_argument("--kinds", nargs="+", default=None, help="server kinds (default: runtime and its bare pair)")
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    asyncio.run(profile(args.workload, args.kinds or PAIRS[args.workload], args.requests, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
