"""The workflow agent: creates service orders (moves, new connections) and tracks their status.

Data: ``orders.db``, one row per order; order ids are ``ORD-`` and a number from 100001 up. An
installation slot belongs to one order: creating an order again for the same slot and account (a
retried step) returns the existing order instead of a duplicate.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

from pydantic import BaseModel

from agents import Agent, Provider, Reject
from agents.customer_service.storage import SeededDatabase

__all__ = ["Order", "agent", "create_order", "order_status"]

agent = Agent(
    "workflow",
    "Workflow agent: creates and tracks orders",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    number INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, service TEXT NOT NULL,
    address TEXT NOT NULL, slot_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""
_FIRST_NUMBER = 100001


def _seed(connection: sqlite3.Connection) -> None:
    # AUTOINCREMENT continues from sqlite_sequence: order numbers start at _FIRST_NUMBER
    connection.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('orders', ?)", (_FIRST_NUMBER - 1,))


orders = SeededDatabase("orders.db", _SCHEMA, _seed)
agent.on_stop(orders.close)


class Order(BaseModel):
    order_id: str
    status: str  # "scheduled" when created
    account_id: str
    service: str
    address: str
    slot_id: str
    kind: str
    created_at: str


def _order(row: sqlite3.Row) -> Order:
    fields = {key: row[key] for key in row.keys() if key != "number"}
    return Order(order_id=f"ORD-{row['number']}", **fields)


@agent.skill(
    tags=["order", "workflow", "create"],
    examples=["create a move order for account 1002", "place an order for broadband"],
)
async def create_order(account_id: str, service: str, address: str, slot_id: str, kind: str = "move") -> Order:
    """Create an order (kind: move, new or cancel) for an account's service at an address, installed in
    a booked slot; the order starts as "scheduled"."""
    values = (account_id.strip(), service.strip().lower(), address.strip(), slot_id.strip(), kind.strip().lower())

    def create(connection: sqlite3.Connection) -> sqlite3.Row:
        existing = connection.execute("SELECT * FROM orders WHERE slot_id = ?", (values[3],)).fetchone()
        if existing is not None:
            if (existing["account_id"], existing["kind"]) != (values[0], values[4]):
                raise Reject(f"Slot {values[3]} already belongs to another order; please book a new slot.")
            return existing  # the same request again (a retry): one order, not two
        return connection.execute(
            """INSERT INTO orders (account_id, service, address, slot_id, kind, status, created_at)
               VALUES (?, ?, ?, ?, ?, 'scheduled', ?) RETURNING *""",
            (*values, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        ).fetchone()

    return _order(await orders.write(create))


@agent.skill(tags=["order", "status", "tracking"], examples=["what is the status of order ORD-100001?"])
async def order_status(order_id: str) -> Order:
    """The current state of an order, by its id (ORD-100001)."""
    number = "".join(re.findall(r"\d", order_id))[:18]  # within SQLite's integers

    def find(connection: sqlite3.Connection) -> sqlite3.Row | None:
        return connection.execute("SELECT * FROM orders WHERE number = ?", (int(number),)).fetchone()

    row = await orders.read(find) if number else None
    if row is None:
        raise Reject(f"Sorry, I couldn't find order {order_id}; order numbers look like ORD-100001.")
    return _order(row)
