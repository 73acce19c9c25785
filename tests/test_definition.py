"""The agent definition API, text routing and settings: unit level, no sockets."""

import pytest
from pydantic import BaseModel

from agents import Agent, Artifact, ToolContext
from agents.routing import rank_skills
from agents.settings import MeshSettings, SettingsError
from protocols.cards import build_card, card_to_dict, validate_card
from tests.agents_under_test import agent as testbench


def test_a_fifteen_line_agent():
    weather = Agent("weather", "Forecasts for any city", version="1.2.0")

    class Forecast(BaseModel):
        city: str
        celsius: float

    @weather.skill(tags=["weather"], examples=["weather in Paris tomorrow"])
    async def forecast(city: str, days: int = 1) -> Forecast:
        """Forecast the weather for a city."""
        return Forecast(city=city, celsius=21.5)

    skill = weather.skills["forecast"]
    assert skill.input_schema["required"] == ["city"]
    assert skill.input_schema["properties"]["days"]["default"] == 1
    assert skill.output_schema["required"] == ["city", "celsius"]
    card = card_to_dict(build_card(weather, "http://127.0.0.1:9000"))
    assert validate_card(card) == []
    assert card["skills"][0] == {"id": "forecast", "name": "Forecast", "description": "Forecast the weather for a city.",
                                 "tags": ["weather"], "examples": ["weather in Paris tomorrow"]}


def test_definition_errors_are_caught_at_registration():
    agent = Agent("a", "b")

    @agent.skill
    def one(x: str) -> str:
        """One."""
        return x

    with pytest.raises(ValueError, match="already has a skill 'one'"):
        agent.add_skill(one)
    with pytest.raises(ValueError, match="needs a description"):
        agent.add_skill(lambda x: x, id="nodoc")
    with pytest.raises(ValueError, match="must match"):
        agent.add_skill(one, id="has space")


def test_context_parameter_is_hidden_from_the_schema():
    agent = Agent("a", "b")

    @agent.skill
    async def work(item: str, ctx: ToolContext) -> list[Artifact]:
        """Work."""
        return []

    skill = agent.skills["work"]
    assert skill.context_parameter == "ctx"
    assert list(skill.input_schema["properties"]) == ["item"]
    assert skill.output_schema is None  # our own result types publish no schema


@pytest.mark.parametrize(
    ("text", "expected"),
    [("please add 2 and 3", "add"), ("echo this", "echo"), ("take the survey now", "survey"), ("build a profile for Ada", "profile")],
)
def test_text_ranks_the_right_skill_first(text, expected):
    assert rank_skills(testbench, text)[0][1].id == expected


def test_unrelated_text_ranks_nothing():
    assert rank_skills(testbench, "xyzzy plugh") == []


def test_settings_from_env(tmp_path):
    settings = MeshSettings.from_env({"MESH_HOME": str(tmp_path), "MESH_PORT": "8123", "MESH_TASK_STORE": "memory",
                                      "MESH_PUBLIC_URL": "http://agents.internal:8123/"})
    assert settings.home == tmp_path and settings.port == 8123 and settings.task_store == "memory"
    assert settings.public_url == "http://agents.internal:8123"
    assert MeshSettings.from_env({"MESH_PORT": "1"}, port=2).port == 2


@pytest.mark.parametrize(("env", "named"), [({"MESH_PORT": "70000"}, "MESH_PORT"), ({"MESH_TASK_STORE": "redis"}, "MESH_TASK_STORE"),
                                            ({"MESH_MAX_BODY_BYTES": "-1"}, "MESH_MAX_BODY_BYTES")])
def test_bad_settings_name_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        MeshSettings.from_env(env)
