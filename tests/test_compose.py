"""compose.yaml is checked against the code: there is no Docker engine to run it here."""

from __future__ import annotations

import os
import re

import yaml

from agents.cli import load_agent
from agents.settings import MeshSettings
from tests.support import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def environment(service: dict) -> dict[str, str]:
    """The service's environment with ${VAR:-default} resolved to its default, as compose would."""
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in service["environment"].items()}


def mesh_services() -> dict:
    return {name: s for name, s in compose()["services"].items() if s.get("image") == "agent-mesh:latest"}


def test_every_mesh_service_runs_a_real_command_with_valid_settings():
    services = compose()["services"]
    for name, service in mesh_services().items():
        command = service["command"]
        assert command[0] in ("serve", "registry"), name
        if command[0] == "serve":
            assert load_agent(command[1]).name
        port = int(command[command.index("--port") + 1])
        settings = MeshSettings.from_env(environment(service))
        assert settings.port == port and settings.host == "0.0.0.0", name
        assert settings.public_url == f"http://{name}:{port}", "the card and links must name the service"
        assert any(str(p).endswith(f":{port}") for p in service["ports"])
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
            else:
                assert dependency == "jaeger" and condition["condition"] == "service_started"


def test_agents_register_with_the_registry_using_its_token():
    services = mesh_services()
    registry = services["registry"]
    registry_env = environment(registry)
    assert "--db" in registry["command"] and registry["command"][registry["command"].index("--db") + 1].startswith("postgresql://")
    database = registry["command"][registry["command"].index("--db") + 1]
    postgres_env = compose()["services"]["postgres"]["environment"]
    assert database == f"postgresql://{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}@postgres:5432/{postgres_env['POSTGRES_DB']}"
    for name, service in services.items():
        if service["command"][0] != "serve":
            continue
        env = environment(service)
        assert env["MESH_REGISTRY_URL"] == registry_env["MESH_PUBLIC_URL"]
        assert env["MESH_REGISTRY_TOKEN"] in registry_env["MESH_REGISTRY_TOKENS"].split(",")
        assert "registry" in service["depends_on"]


def test_the_image_installs_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("agents", "protocols", "registry", "tracing"):
        assert f"COPY {package} ./{package}" in dockerfile
        assert os.path.isdir(ROOT / package)
    assert 'ENTRYPOINT ["mesh"]' in dockerfile


def test_every_mesh_service_exports_its_spans_to_jaeger():
    services = compose()["services"]
    jaeger = services["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert any(str(p).endswith(":4318") for p in jaeger["ports"]) and any(str(p).endswith(":16686") for p in jaeger["ports"])
    for name, service in mesh_services().items():
        env = environment(service)
        assert env["OTEL_TRACES_EXPORTER"] == "otlp", name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf", name
        assert service["depends_on"]["jaeger"]["condition"] == "service_started"
        MeshSettings.from_env(env)  # the MESH_* part is valid
