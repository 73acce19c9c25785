"""compose.yaml is checked against the code: there is no Docker engine to run it here."""

from __future__ import annotations

import yaml

from agents.cli import load_agent
from agents.settings import MeshSettings
from tests.support import ROOT


def services() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def test_every_service_serves_a_real_agent_with_valid_settings():
    for name, service in services().items():
        command = service["command"]
        assert command[0] == "serve", name
        agent = load_agent(command[1])
        port = int(command[command.index("--port") + 1])
        settings = MeshSettings.from_env({k: str(v) for k, v in service["environment"].items()})
        assert settings.port == port and settings.host == "0.0.0.0"
        assert settings.public_url == f"http://{name}:{port}", "the card must name the service, not localhost"
        assert any(str(p).endswith(f":{port}") for p in service["ports"])
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert agent.name


def test_the_image_installs_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("agents", "protocols", "registry", "tracing"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'ENTRYPOINT ["mesh"]' in dockerfile
