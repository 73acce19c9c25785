"""`make demo` (the main job) runs end to end on embedded defaults."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.support import ROOT, free_port


def two_free_ports() -> int:
    """A free port whose successor is free too: the demo's registry takes port + 1."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def test_the_demo_runs_end_to_end(tmp_path):
    port = two_free_ports()
    env = {**os.environ, "MESH_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "agents.examples.demo", "--once", "--port", str(port)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"resolve helpdesk@1.0.0 -> http://127.0.0.1:{port} (healthy)" in out
    assert "completed: The support is open every day 08:00-20:00." in out
    assert "agent asks: 'Morning or afternoon?'" in out and '"slot": "morning"' in out
    assert "tools/call opening_hours -> {'result': 'The billing is open Mon-Fri 09:00-17:00.'}" in out
    assert "tools/call opening_hours -> {'result': 'The shop is open Mon-Sat 09:00-18:00.'}" in out
    assert "execute_tool book_callback [internal]" in out and "services: helpdesk, mesh-demo" in out
    assert "Traceback" not in done.stderr


def test_the_customer_service_demo_books_a_move_and_resumes_an_escalation(tmp_path):
    """`make demo`: mesh up, a move booked end to end, an escalation answered by a human, the trace."""
    env = {**os.environ, "MESH_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "agents.customer_service.demo", "--once"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "All set, " in out and "12 Oak Street" in out and "ORD-" in out
    assert "ESC-" in out and "is completed" in out and "99 Elm Road" in out
    assert "services: " in out and "invoke_workflow" in out  # the trace crosses the processes
    assert "mesh stopped" in out + done.stderr
    assert not (tmp_path / "up.json").exists()
