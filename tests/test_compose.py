"""compose.yaml is checked against the code: there is no Docker engine to run it here."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
import yaml

from agents.cli import load_agent
from agents.customer_service.manifest import AGENTS, COORDINATOR, REGISTRY_PORT, mesh_processes
from agents.settings import MeshSettings
from tests.support import ROOT

POSTGRES_URL = "postgresql://mesh:mesh@postgres:5432/mesh"


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


def agent_services() -> dict:
    return {name: s for name, s in mesh_services().items() if s["command"][0] == "serve"}


def test_the_agent_services_are_the_manifest():
    services = agent_services()
    assert list(services) == [p.name for p in mesh_processes()]  # in start order: the coordinator last
    for process in mesh_processes():
        assert services[process.name]["command"] == ["serve", process.target, "--port", str(process.port)]
    registry = mesh_services()["registry"]["command"]
    assert registry[:3] == ["registry", "--port", str(REGISTRY_PORT)]


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing too
        return False


@pytest.mark.parametrize("process", mesh_processes(), ids=lambda p: p.name)
def test_every_agent_service_serves_a_real_agent(process):
    module = process.target.partition(":")[0]
    if not _module_exists(module):
        # TODO(lead): the customer-service agents are being written; once every module exists this
        # skip never fires and the check is strict. Remove it when the coordinator has landed.
        pytest.skip(f"{module} does not exist yet")
    assert load_agent(process.target).name  # imports, and names an agents.Agent


def test_agents_wait_for_the_registry_and_the_coordinator_for_every_specialist():
    services = compose()["services"]
    for name, service in agent_services().items():
        assert service["depends_on"]["registry"]["condition"] == "service_healthy", name
    coordinator = services[COORDINATOR.name]["depends_on"]
    for specialist in AGENTS:
        assert coordinator[specialist.name]["condition"] == "service_healthy", specialist.name


def test_postgresql_holds_the_registry_store_and_the_workflow_state():
    services = compose()["services"]
    postgres_env = services["postgres"]["environment"]
    assert POSTGRES_URL == (f"postgresql://{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}"
                            f"@postgres:5432/{postgres_env['POSTGRES_DB']}")
    registry = services["registry"]["command"]
    assert registry[registry.index("--db") + 1] == POSTGRES_URL
    assert MeshSettings.from_env(environment(services[COORDINATOR.name])).workflow_db == POSTGRES_URL
    for name, service in mesh_services().items():
        env = environment(service)
        uses_postgres = "postgres:5432" in " ".join([*service["command"], *env.values()])
        if env.get("MESH_DATABASE_URL"):  # a2a-sdk's task store: SQLAlchemy's async driver in the URL
            assert env["MESH_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert uses_postgres == ("postgres" in service["depends_on"]), name
        if uses_postgres:
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_agents_share_one_home_as_under_mesh_up():
    for name, service in agent_services().items():
        assert f"mesh-state:{environment(service)['MESH_HOME']}" in service["volumes"], name
    assert "mesh-state" in compose()["volumes"]


def test_the_image_holds_every_target_and_its_data():
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+) \./\1$", dockerfile, re.M)
    needed = {p.target.split(".")[0] for p in mesh_processes()} | {"agents/customer_service/data"}
    for path in needed:
        assert any(path == c or path.startswith(c + "/") for c in copied), path
    # data files are found next to the modules only if they are imported from the copied tree
    assert re.search(r"^RUN pip install .*-e \.$", dockerfile, re.M)
    assert not (ROOT / ".dockerignore").exists() or "data" not in (ROOT / ".dockerignore").read_text()
