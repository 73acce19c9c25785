"""The scheduling agent: engineers' installation slots, booked first come first served.

Data: ``scheduling.db``, one row per slot (a day, a window, an engineer), seeded from
``data/scheduling.json``: two windows on each of the next 10 working days, a few engineers per
window. The horizon rolls: each call adds the working days that came into range since, so a
long-lived mesh keeps having slots.

A booking is one ``UPDATE ... WHERE slot_id = (earliest free slot) RETURNING`` under SQLite's write
lock: two concurrent bookings, in one process or several, never get the same slot.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Annotated

from pydantic import BaseModel, Field

from agents import Agent, Provider, Reject
from agents.customer_service.storage import SeededDatabase, load_seed

__all__ = ["Booking", "Slot", "SlotList", "agent", "book_installation", "list_slots"]

agent = Agent(
    "scheduling",
    "Scheduling agent: books engineer installation slots (mornings 08:00-12:00, afternoons 13:00-17:00)",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    slot_id TEXT PRIMARY KEY, day TEXT NOT NULL, hours TEXT NOT NULL, engineer INTEGER NOT NULL,
    booked_at TEXT, address TEXT, service TEXT, technology TEXT
);
CREATE INDEX IF NOT EXISTS slots_free ON slots(booked_at, day, hours, engineer);
"""


class Slot(BaseModel):
    slot_id: str
    slot: str  # for people: "Tue 24 Nov 08:00-12:00"
    date: str  # ISO date
    window: str  # "08:00-12:00"


class Booking(Slot):
    technology: str


class SlotList(BaseModel):
    slots: list[Slot]


def _working_days(after: dt.date, count: int) -> list[dt.date]:
    days, day = [], after
    while len(days) < count:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def _add_slots(connection: sqlite3.Connection, today: dt.date) -> None:
    """Make sure the next working days (per the seed file) have their slots; existing ones are kept."""
    plan = load_seed("scheduling.json")
    days = _working_days(today, plan["working_days"])
    latest = connection.execute("SELECT MAX(day) FROM slots").fetchone()[0]
    if latest is not None and latest >= days[-1].isoformat():
        return
    connection.executemany(
        "INSERT OR IGNORE INTO slots (slot_id, day, hours, engineer) VALUES (?, ?, ?, ?)",
        [
            (f"SLOT-{day:%Y%m%d}-{hours[:2]}{hours[3:5]}-{engineer}", day.isoformat(), hours, engineer)
            for day in days
            for hours in plan["windows"]
            for engineer in range(1, plan["engineers_per_window"] + 1)
        ],
    )


scheduling = SeededDatabase("scheduling.db", _SCHEMA, lambda connection: _add_slots(connection, dt.date.today()))
agent.on_stop(scheduling.close)


def _slot(row: sqlite3.Row) -> dict[str, str]:
    day = dt.date.fromisoformat(row["day"])
    return {
        "slot_id": row["slot_id"],
        "slot": f"{day:%a} {day.day} {day:%b} {row['hours']}",
        "date": row["day"],
        "window": row["hours"],
    }


@agent.skill(
    tags=["scheduling", "installation", "booking", "engineer", "appointment"],
    examples=["book an installation at 12 Oak Street", "book an engineer visit"],
)
async def book_installation(address: str, service: str = "broadband", technology: str = "standard") -> Booking:
    """Book the earliest free engineer slot for an installation at an address; returns the slot."""
    today = dt.date.today()

    def book(connection: sqlite3.Connection) -> sqlite3.Row | None:
        _add_slots(connection, today)
        return connection.execute(
            """UPDATE slots SET booked_at = ?, address = ?, service = ?, technology = ?
               WHERE slot_id = (SELECT slot_id FROM slots WHERE booked_at IS NULL AND day > ?
                                ORDER BY day, hours, engineer LIMIT 1)
               RETURNING slot_id, day, hours""",
            (dt.datetime.now(dt.UTC).isoformat(), address, service, technology, today.isoformat()),
        ).fetchone()

    row = await scheduling.write(book)
    if row is None:
        raise Reject("Sorry, every installation slot in the next two weeks is taken; one of our team will call you.")
    return Booking(**_slot(row), technology=technology)


@agent.skill(tags=["scheduling", "slots", "availability"], examples=["which installation slots are free?"])
async def list_slots(limit: Annotated[int, Field(ge=1, le=200)] = 10) -> SlotList:
    """The earliest free installation slots."""
    today = dt.date.today()

    def free(connection: sqlite3.Connection) -> list[sqlite3.Row]:
        _add_slots(connection, today)
        return connection.execute(
            "SELECT * FROM slots WHERE booked_at IS NULL AND day > ? ORDER BY day, hours, engineer LIMIT ?",
            (today.isoformat(), limit),
        ).fetchall()

    return SlotList(slots=[Slot(**_slot(row)) for row in await scheduling.write(free)])
