"""The customer-service mesh end to end: ten processes, `mesh ask`, escalation and `mesh reply`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agents.customer_service.manifest import AGENTS, COORDINATOR
from tests.coordination.support import Mesh
from tests.support import ROOT

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    mesh = Mesh(tmp_path_factory.mktemp("cs-mesh"))
    mesh.start_registry()
    try:
        for process in AGENTS:
            mesh.start(process.name, process.target)
        mesh.start(COORDINATOR.name, COORDINATOR.target)
        yield mesh
    finally:
        mesh.stop()


def mesh_cli(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESH_HOME": str(mesh.home), "MESH_COORDINATOR_URL": mesh.processes["coordinator"].url}
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


async def test_moving_broadband_books_a_slot_creates_an_order_and_confirms(mesh):
    await mesh.wait_healthy(*(p.name for p in AGENTS))
    done = mesh_cli(mesh, "ask", "I've moved to 12 Oak Street and need my broadband moved, account 1002")
    assert done.returncode == 0, done.stderr + done.stdout
    answer = done.stdout.splitlines()[0]
    assert "12 Oak Street" in answer and "ORD-" in answer and "@example.com" in answer, done.stdout
    assert "trace " in done.stdout and "workflow " in done.stdout
    workflow_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("workflow "))
    shown = mesh_cli(mesh, "workflow", workflow_id)
    assert shown.returncode == 0, shown.stderr
    for step in ("intent", "screening", "customer", "eligibility", "booking", "order", "confirmation"):
        assert f"  {step} " in shown.stdout, shown.stdout


async def test_an_unknown_account_is_asked_for_politely(mesh):
    await mesh.wait_healthy(*(p.name for p in AGENTS))
    asked = mesh_cli(mesh, "ask", "Please move my broadband to 12 Oak Street, account 9999")
    assert asked.returncode == 3, asked.stdout + asked.stderr
    assert "couldn't find account 9999" in asked.stdout
    hint = next(line for line in asked.stdout.splitlines() if line.startswith("answer with:"))
    task, context = hint.split("--task ")[1].split()[0], hint.split("--context ")[1].split()[0]
    done = mesh_cli(mesh, "ask", "--task", task, "--context", context, "sorry, it's 1001")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ORD-" in done.stdout


async def test_gibberish_is_answered_with_a_question(mesh):
    asked = mesh_cli(mesh, "ask", "blorft znak quux")
    assert asked.returncode == 3, asked.stdout + asked.stderr
    assert "what would you like to do" in asked.stdout.lower()


async def test_an_unverified_address_escalates_to_a_human_and_resumes(mesh):
    await mesh.wait_healthy(*(p.name for p in AGENTS))
    asked = mesh_cli(mesh, "ask", "I'm moving to 99 Elm Road, please move my broadband, account 1003")
    assert asked.returncode == 3, asked.stdout + asked.stderr
    assert "specialist" in asked.stdout and "ESC-" in asked.stdout
    reference = next(word.strip("();,") for word in asked.stdout.split() if word.startswith("ESC-"))
    inbox = mesh_cli(mesh, "inbox")
    assert reference in inbox.stdout and "low confidence" in inbox.stdout, inbox.stdout
    replied = mesh_cli(mesh, "reply", reference, "Checked with the network team: 99 Elm Road has fibre.")
    assert replied.returncode == 0, replied.stdout + replied.stderr
    assert "completed" in replied.stdout and "ORD-" in replied.stdout, replied.stdout
    assert reference not in mesh_cli(mesh, "inbox").stdout


async def test_a_card_number_is_flagged_and_a_human_can_stop_the_workflow(mesh):
    await mesh.wait_healthy(*(p.name for p in AGENTS))
    asked = mesh_cli(mesh, "ask", "Move my broadband to 12 Oak Street, account 1001, "
                                  "and charge my card 4111 1111 1111 1111")
    assert asked.returncode == 3, asked.stdout + asked.stderr
    reference = next(word.strip("();,") for word in asked.stdout.split() if word.startswith("ESC-"))
    inbox = mesh_cli(mesh, "inbox", "--json")
    escalation = next(e for e in __import__("json").loads(inbox.stdout) if e["id"] == reference)
    assert escalation["reason"].startswith("compliance flag from compliance")
    assert "4111" not in inbox.stdout  # the operator sees the context, not the card number
    stopped = mesh_cli(mesh, "reply", reference, "reject: We never take card numbers by chat; please call us.")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "failed" in stopped.stdout
    shown = mesh_cli(mesh, "workflow", escalation["workflow_id"])
    assert "failed" in shown.stdout and "\n  customer " not in shown.stdout  # nothing ran after the flag
