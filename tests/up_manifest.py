"""A two-agent manifest for `mesh up --manifest tests.up_manifest:PROCESSES` (tests/test_mesh_up.py).

Ports come from ``MESH_TEST_UP_PORTS`` ("PORT,PORT"), so a test knows them and can take one;
``MESH_TEST_UP_BROKEN=1`` makes the second agent's target one that cannot be imported.
"""

from __future__ import annotations

import os

from agents.customer_service.manifest import MeshProcess

_first, _second = (int(port) for port in os.environ["MESH_TEST_UP_PORTS"].split(","))
_broken = bool(os.environ.get("MESH_TEST_UP_BROKEN"))
_second_target = "tests.no_such_module:agent" if _broken else "tests.agents_under_test:agent"

PROCESSES = (
    MeshProcess("helpdesk", "agents.examples.helpdesk:agent", _first, "opening hours and call-backs"),
    MeshProcess("testbench", _second_target, _second, "echoes and adds"),
)
