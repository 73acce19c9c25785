"""Agents the tests serve: each skill exercises one runtime behaviour."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from agents import Agent, Artifact, Reject, Reply, ToolContext, ToolError

agent = Agent("testbench", "Echoes, adds, fails and waits on purpose, for the test suite", version="2.1.0")


class Profile(BaseModel):
    name: str
    age: int
    adult: bool


@agent.skill(tags=["echo", "repeat"], examples=["echo hello", "repeat after me"])
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@agent.skill(tags=["math", "sum"], examples=["add 2 and 3"])
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@agent.skill(tags=["people"], examples=["make a profile"])
def profile(name: str, age: int) -> Profile:
    """Build a person's profile."""
    return Profile(name=name, age=age, adult=age >= 18)


@agent.skill(tags=["failure"])
def boom(reason: str = "database on fire") -> str:
    """Always raises an unexpected exception."""
    raise RuntimeError(reason)


@agent.skill(tags=["failure"])
def refuse(why: str) -> str:
    """Always refuses the request."""
    raise Reject(f"not allowed: {why}")


@agent.skill(tags=["failure"])
def quota(customer: str) -> str:
    """Fails with a message meant for the caller."""
    raise ToolError(f"customer {customer} is over quota")


@agent.skill(tags=["time"])
async def slow(seconds: float, ctx: ToolContext) -> str:
    """Report progress, wait, then finish (used for cancel, subscribe and non-blocking sends)."""
    await ctx.progress("started", 0, 1)
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@agent.skill(tags=["stream"])
async def chunks(count: int, ctx: ToolContext) -> None:
    """Stream one text artifact in ``count`` chunks."""
    for i in range(count):
        await ctx.emit(
            Artifact(f"chunk-{i} ", name="story", artifact_id="story", append=i > 0, last_chunk=i == count - 1)
        )
        await asyncio.sleep(0.01)


@agent.skill(tags=["files"])
def report(title: str) -> list[Artifact]:
    """Return a text, a file and a link artifact."""
    return [
        Artifact(f"# {title}", name="summary", media_type="text/markdown"),
        Artifact(title.encode(), name="raw", media_type="text/plain", filename="report.txt"),
        Artifact(url="https://example.com/report.pdf", name="link", media_type="application/pdf"),
    ]


@agent.skill(tags=["greeting"])
def hello(name: str) -> Reply:
    """Answer with a bare message, no task."""
    return Reply(f"Hello, {name}!")


@agent.skill(tags=["survey"], examples=["take the survey"])
async def survey(ctx: ToolContext) -> dict[str, str]:
    """Ask two questions, then return the answers."""
    colour = await ctx.ask("Favourite colour?")
    animal = await ctx.ask("Favourite animal?")
    return {"colour": colour, "animal": animal}
