"""`make demo`: the customer-service mesh on this machine, driven through the `mesh` command line.

    python -m agents.customer_service.demo [--once]

Starts `mesh up` (registry, eight agents, coordinator: ten processes), then runs what a user
would type: a broadband move booked end to end, and a move to an address the coordinator cannot
verify, which goes to a human (`mesh inbox`, `mesh reply`) and resumes. It prints the trace of the
first request from the embedded span store. With ``--once`` it stops the mesh at the end;
otherwise the mesh keeps running for you to try (`mesh ask "..."` in another terminal) until Ctrl-C.
State goes to ``$MESH_HOME`` (default ``.mesh/``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from agents.settings import MeshSettings
from agents.supervisor import read_up_state

MOVE = "I've moved to 12 Oak Street and need my broadband moved, account 1002"
UNVERIFIED = "I'm moving to 99 Elm Road, please move my broadband there too, account 1003"
HUMAN_REPLY = "Checked with the network team: 99 Elm Road is on our fibre network."


def _title(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def _mesh(*args: str, show: bool = True) -> subprocess.CompletedProcess[str]:
    if show:
        print("$ mesh " + " ".join(f'"{a}"' if " " in a else a for a in args), flush=True)
    done = subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=180)
    if show:
        print(done.stdout.rstrip(), flush=True)
        if done.stderr.strip():
            print(done.stderr.rstrip(), file=sys.stderr, flush=True)
    return done


def _start_mesh(settings: MeshSettings) -> subprocess.Popen[bytes]:
    _title("mesh up: registry, 8 agents and the coordinator, each its own process")
    up = subprocess.Popen([sys.executable, "-m", "agents.cli", "up", "--no-table"])
    deadline = time.monotonic() + 120
    while read_up_state(settings.home) is None:
        if up.poll() is not None:
            raise SystemExit(f"mesh up exited with code {up.returncode}")
        if time.monotonic() > deadline:
            up.send_signal(signal.SIGINT)
            raise SystemExit("the mesh did not start in 120 s")
        time.sleep(0.3)
    return up


def _value(output: str, prefix: str) -> str | None:
    return next((line.split()[1] for line in output.splitlines() if line.startswith(prefix)), None)


def run(once: bool) -> int:
    settings = MeshSettings.from_env()
    up = _start_mesh(settings)
    try:
        _title("A customer moves house: one request, seven hand-offs")
        moved = _mesh("ask", MOVE)
        workflow_id, trace_id = _value(moved.stdout, "workflow "), _value(moved.stdout, "trace ")
        if workflow_id:
            _mesh("workflow", workflow_id)

        _title("An address the mesh cannot verify: the coordinator asks a human")
        _mesh("ask", UNVERIFIED)
        inbox = _mesh("inbox")
        reference = next((w for w in inbox.stdout.split() if w.startswith("ESC-")), None)
        if reference is None:
            print("no escalation in the inbox", file=sys.stderr)
            return 1
        _title("A human answers; the workflow resumes where it stopped")
        replied = _mesh("reply", reference, HUMAN_REPLY)

        if trace_id:
            _title("The first request as one trace across every process")
            time.sleep(1.5)  # spans are exported in batches
            _mesh("trace", trace_id)
        ok = moved.returncode == 0 and replied.returncode == 0
        if not once and ok:
            print("\nThe mesh is still running: try `mesh ask \"...\"` in another terminal. Ctrl-C stops it.")
            up.wait()
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.customer_service.demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop the mesh when the demo is done")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run(args.once)


if __name__ == "__main__":
    sys.exit(main())
