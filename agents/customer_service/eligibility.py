"""The eligibility agent: which service and technology reach an address.

Data: ``coverage.db`` (one row per street: postcode, technology, top speed), seeded from
``data/coverage.json``. A street missing from the table is *unknown*, not unavailable: the answer
says so with a low confidence, so the coordinator hands the case to a person instead of turning the
customer away.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from pydantic import BaseModel, Field

from agents import Agent, Provider
from agents.customer_service.intent import find_address, normalise_address, normalise_service
from agents.customer_service.storage import SeededDatabase, load_seed

__all__ = ["Availability", "agent", "check_availability"]

agent = Agent(
    "eligibility",
    "Eligibility agent: checks which services and technology (fibre, copper) are available at an address",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage (
    street TEXT PRIMARY KEY COLLATE NOCASE, postcode TEXT NOT NULL,
    technology TEXT NOT NULL CHECK (technology IN ('fibre', 'copper', 'none')), max_speed_mbps INTEGER NOT NULL
);
"""
# Which technologies carry each service: TV comes over fibre only.
_CARRIED_BY = {"broadband": {"fibre", "copper"}, "phone": {"fibre", "copper"}, "tv": {"fibre"}}
NOT_FOUND = "address not found in the coverage database"


def _seed(connection: sqlite3.Connection) -> None:
    connection.executemany(
        "INSERT INTO coverage VALUES (:street, :postcode, :technology, :max_speed_mbps)",
        [{**row, "street": normalise_address(row["street"])} for row in load_seed("coverage.json")["streets"]],
    )


coverage = SeededDatabase("coverage.db", _SCHEMA, _seed)
agent.on_stop(coverage.close)


class Availability(BaseModel):
    address: str
    postcode: str | None
    available: bool
    technology: Literal["fibre", "copper", "none", "unknown"]
    max_speed_mbps: int
    confidence: float = Field(ge=0, le=1)
    note: str


def _street(address: str) -> str:
    """"12 Oak Street, Springfield" → "Oak Street": the first line without the house number."""
    words = address.split(",")[0].split()
    while words and any(c.isdigit() for c in words[0]):
        words.pop(0)
    return " ".join(words)


@agent.skill(
    tags=["eligibility", "availability", "coverage", "fibre"],
    examples=["Is fibre available at 12 Oak Street?", "can I get broadband at 7 Mill Road"],
)
async def check_availability(address: str, service: str = "broadband") -> Availability:
    """Check whether a service (broadband, tv or phone) is available at an address, over which
    technology and at what top speed."""
    where = find_address(address) or normalise_address(address)
    wanted = normalise_service(service)
    street = _street(where)

    def look_up(connection: sqlite3.Connection) -> sqlite3.Row | None:
        return connection.execute("SELECT * FROM coverage WHERE street = ?", (street,)).fetchone()

    row = await coverage.read(look_up) if street else None
    if row is None:
        return Availability(
            address=where, postcode=None, available=False, technology="unknown", max_speed_mbps=0,
            confidence=0.3, note=NOT_FOUND,
        )  # fmt: skip
    technology, speed = row["technology"], row["max_speed_mbps"]
    if wanted not in _CARRIED_BY:
        available, note = False, f"we do not offer a service called {service!r}: broadband, tv or phone"
    elif technology == "none":
        available, note = False, f"no network reaches {street} yet"
    elif technology not in _CARRIED_BY[wanted]:
        available, note = False, f"{wanted} needs fibre; {street} has {technology} only"
    else:
        available, note = True, f"{wanted} over {technology}, up to {speed} Mbps"
    return Availability(
        address=where, postcode=row["postcode"], available=available, technology=technology,
        max_speed_mbps=speed if technology != "none" else 0, confidence=0.95, note=note,
    )  # fmt: skip
