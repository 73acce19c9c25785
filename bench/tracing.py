"""What tracing costs one hop: the runtime with tracing off, on (embedded span store) and on with
OTLP export to a dead collector, in one run, on the same A2A and MCP echo workloads as ``hop.py``.

    .venv/bin/python bench/tracing.py [--quick] [--rounds N]

Target: tracing costs at most 10 % of throughput (req/s at concurrency 16) against tracing off.
The servers, client, pinning and method are ``hop.py``'s (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import hop  # noqa: E402  (the benchmark machinery lives beside this file)

ROWS = [
    hop.Row("a2a tracing off", "a2a", "runtime-notrace", None),
    hop.Row("a2a tracing on (span store)", "a2a", "runtime", "a2a tracing off"),
    hop.Row("a2a tracing on + OTLP, dead collector", "a2a", "runtime-otlp-dead", "a2a tracing off"),
    hop.Row("mcp tracing off", "mcp", "runtime-notrace", None),
    hop.Row("mcp tracing on (span store)", "mcp", "runtime", "mcp tracing off"),
    hop.Row("mcp tracing on + OTLP, dead collector", "mcp", "runtime-otlp-dead", "mcp tracing off"),
]
MAX_THROUGHPUT_COST = 0.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--output", type=Path, default=hop.RESULTS / "tracing.json")
    args = parser.parse_args(argv)
    plan = hop.QUICK if args.quick else hop.FULL
    if args.rounds:
        plan = hop.Plan(**{**asdict(plan), "rounds": args.rounds})
    report = asyncio.run(hop.run(plan, ROWS))
    print(f"\ntracing benchmark ({plan.rounds} rounds, {report['duration_s']} s); "
          f"load average before/after: {report['load_average_before_after']}\n")
    print(hop.render(ROWS, report["results"], report["ratios"]))
    lines = []
    for row in ROWS:
        if row.baseline is None:
            continue
        cost = 1 - report["ratios"][row.label]["req/s c16"]
        verdict = "ok" if cost <= MAX_THROUGHPUT_COST else "OVER"
        lines.append(f"  {row.label}: throughput cost {cost:+.1%} ({verdict}); p50 {report['ratios'][row.label]['p50 c1 (ms)']:.2f}×")
    print(f"\nthroughput cost of tracing (target <= {MAX_THROUGHPUT_COST:.0%}):\n" + "\n".join(lines))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
