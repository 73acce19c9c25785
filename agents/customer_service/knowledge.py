"""The knowledge agent: answers common questions from the FAQ, with an honest confidence.

Data: ``knowledge.db`` (one row per FAQ entry), seeded from ``data/faq.json``. Matching is by the
words a question shares with an entry (its title and keywords weigh most, then its answer), using
the same stemming as the runtime's skill routing; no model. A question nothing matches gets
confidence 0, which the coordinator turns into a hand-over to a person.
"""

from __future__ import annotations

import json
import sqlite3

from pydantic import BaseModel, Field

from agents import Agent, Provider
from agents.customer_service.storage import SeededDatabase, load_seed
from agents.routing import keywords

__all__ = ["FaqAnswer", "agent", "search_faq"]

agent = Agent(
    "knowledge",
    "Knowledge agent: answers frequently asked questions about service, billing, moving and installation",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS faq (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, keywords TEXT NOT NULL, answer TEXT NOT NULL  -- keywords: JSON list
);
"""
DONT_KNOW = (
    "I'm sorry, I don't know that one. I can pass your question to one of our team, "
    "or you can ask about bills, payments, speeds, router lights, outages, moving house or installation."
)


def _seed(connection: sqlite3.Connection) -> None:
    connection.executemany(
        "INSERT INTO faq VALUES (:id, :title, :keywords, :answer)",
        [{**entry, "keywords": json.dumps(entry["keywords"])} for entry in load_seed("faq.json")["entries"]],
    )


faq = SeededDatabase("knowledge.db", _SCHEMA, _seed)
agent.on_stop(faq.close)


class FaqAnswer(BaseModel):
    answer: str
    source: str  # the FAQ entry's id; empty when nothing matched
    title: str
    confidence: float = Field(ge=0, le=1)


def _score(question: set[str], row: sqlite3.Row) -> tuple[float, float]:
    """(ranking score, confidence) of one entry for the question's keywords."""
    strong = keywords(row["title"] + " " + " ".join(json.loads(row["keywords"])))
    weak = keywords(row["answer"]) - strong
    strong_hits, weak_hits = len(question & strong), len(question & weak)
    coverage = (strong_hits + 0.5 * weak_hits) / len(question)
    confidence = min(0.95, 0.6 * coverage + 0.15 * strong_hits + 0.05 * weak_hits)
    return 2 * strong_hits + weak_hits, confidence


@agent.skill(
    tags=["faq", "knowledge", "question", "help"],
    examples=["What do the lights on my router mean?", "When is my bill date?", "How do I pay?"],
)
async def search_faq(question: str) -> FaqAnswer:
    """Answer a customer's question from the FAQ (router lights, bills, payments, speeds, outages,
    moving house, installation, cancelling...); confidence 0 when the FAQ does not cover it."""
    words = keywords(question)
    rows = await faq.read(lambda connection: connection.execute("SELECT * FROM faq ORDER BY rowid").fetchall())
    best: tuple[float, float, sqlite3.Row] | None = None
    for row in rows if words else ():
        score, confidence = _score(words, row)
        if score > 0 and (best is None or score > best[0]):
            best = (score, confidence, row)
    if best is None:
        return FaqAnswer(answer=DONT_KNOW, source="", title="", confidence=0.0)
    _, confidence, row = best
    return FaqAnswer(answer=row["answer"], source=row["id"], title=row["title"], confidence=round(confidence, 2))
