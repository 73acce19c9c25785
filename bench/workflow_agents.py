"""The four agents of the workflow benchmark: ``step1`` … ``step4``, each its own ``mesh serve`` process.

Every agent has one ``async def`` skill, ``advance(value, trail)``, that adds its number to
``value`` and appends its mark to ``trail``. Chained step1 → step4, each call's arguments are the
previous call's output, so the benchmark's plan is a real sequential hand-off (the coordinator fills
each step's arguments from the step before) and the final output proves every step ran, in order:
``value + 10`` and ``trail + ">1>2>3>4"``. The work itself is next to nothing, so the benchmark
measures the hops and the orchestration, not the agents.
"""

from __future__ import annotations

from typing import Any

from agents import Agent

STAGES = (1, 2, 3, 4)


def expected(value: int, trail: str, upto: int = len(STAGES)) -> dict[str, Any]:
    """What the chain returns after stages 1..``upto`` (the benchmark checks every reply against it)."""
    return {"value": value + sum(STAGES[:upto]), "trail": trail + "".join(f">{n}" for n in STAGES[:upto])}


def _stage(n: int) -> Agent:
    agent = Agent(f"step{n}", f"Workflow benchmark stage {n}: adds {n} to a value and marks a trail", version="1.0.0")

    @agent.skill(id="advance", tags=["bench"])
    async def advance(value: int, trail: str) -> dict[str, Any]:
        """Add this stage's number to the value and append its mark to the trail."""
        return {"value": value + n, "trail": f"{trail}>{n}"}

    return agent


step1, step2, step3, step4 = (_stage(n) for n in STAGES)
