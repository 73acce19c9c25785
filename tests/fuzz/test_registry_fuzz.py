"""Schemathesis against the registry's own OpenAPI document, on a real registry process.

Every operation gets schema-valid and schema-breaking requests with the write token; every answer
must be below 500, carry a status code and content type the document declares, and match the
declared response schema.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from protocols.registry_client import read_local_token
from tests.fuzz.support import FUZZ
from tests.support import AgentProcess


class RegistryProcess(AgentProcess):
    """``mesh registry`` in its own process, strict about private URLs (nothing it is sent gets fetched)."""

    def command(self) -> list[str]:
        return ["registry", "--port", str(self.port)]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-registry")
    process = RegistryProcess("", home, env={"MESH_ALLOW_PRIVATE_URLS": "false", "MESH_MAX_BODY_BYTES": "65536"})
    with process:
        yield process
        assert httpx.get(process.url + "/healthz", timeout=5).status_code == 200, "the registry is no longer healthy"
        assert process.proc is not None and process.proc.poll() is None, "the registry process died"
    log = process.log.read_text()
    assert "Exception in ASGI application" not in log, log[-3000:]


def operations(registry: RegistryProcess) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(registry.url + "/v1/openapi.json")
    # the watch stream never ends by design: it is tested over real sockets in tests/registry/test_watch.py
    return [result.ok() for result in schema.exclude(path="/v1/watch").get_all_operations()]


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# schemathesis' own pytest plugin does not run on pytest 9 yet; its strategies and checks do
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_registry_api_conforms_to_its_openapi_document(registry, mode):
    headers = {"Authorization": f"Bearer {read_local_token(registry.home)}"}
    found = operations(registry)
    assert len(found) >= 8, [o.label for o in found]
    fuzzed = []
    for operation in found:

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=15)

        try:
            call()
        except Unsatisfiable:  # nothing schema-breaking to send (e.g. a free-form path parameter)
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        fuzzed.append(operation.label)
    assert len(fuzzed) >= 5, fuzzed
