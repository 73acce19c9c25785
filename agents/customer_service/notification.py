"""The notification agent: writes customer confirmations to an outbox.

Data: ``outbox.db``, one row per message (recipient, subject, body, status ``queued``). Nothing is
sent from here: a mail relay, or a person reading ``list_outbox``, takes messages from the outbox.
Confirming the same order, slot and recipient again (a retried step) queues no second message.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from typing import Annotated

from pydantic import BaseModel, Field

from agents import Agent, Provider, Reject
from agents.customer_service.storage import SeededDatabase

__all__ = ["Notification", "Outbox", "OutboxMessage", "agent", "list_outbox", "send_confirmation"]

agent = Agent(
    "notification",
    "Notification agent: sends order confirmations to customers by email (through an outbox)",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    number INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, recipient TEXT NOT NULL,
    subject TEXT NOT NULL, body TEXT NOT NULL, order_id TEXT NOT NULL, slot TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (order_id, slot, recipient)
);
"""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SERVICE_NAMES = {"broadband": "broadband", "tv": "TV", "phone": "phone line"}

outbox = SeededDatabase("outbox.db", _SCHEMA)
agent.on_stop(outbox.close)


class Notification(BaseModel):
    notification_id: str
    channel: str
    to: str
    status: str  # "queued": in the outbox


class OutboxMessage(Notification):
    subject: str
    body: str
    order_id: str
    created_at: str


class Outbox(BaseModel):
    messages: list[OutboxMessage]


def _message(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(
        notification_id=f"NTF-{row['number']}", channel=row["channel"], to=row["recipient"], status=row["status"],
        subject=row["subject"], body=row["body"], order_id=row["order_id"], created_at=row["created_at"],
    )  # fmt: skip


def _confirmation(customer_name: str, order_id: str, slot: str, address: str, service: str) -> tuple[str, str]:
    what = _SERVICE_NAMES.get(service.strip().lower(), service.strip())
    subject = f"Your {what} installation is booked: order {order_id}"
    body = (
        f"Dear {customer_name},\n\n"
        f"Thank you for your order {order_id}. An engineer will install your {what} at {address} on {slot}.\n"
        "Someone over 18 needs to be at home during that window; the visit takes one to two hours.\n\n"
        f"If the time does not suit you, reply to this email or call 0800 000 000, quoting {order_id}.\n\n"
        "Kind regards,\nCustomer Service\n"
    )
    return subject, body


@agent.skill(
    tags=["notification", "confirmation", "email"],
    examples=["send the order confirmation to ben.okafor@example.com"],
)
async def send_confirmation(
    email: str, customer_name: str, order_id: str, slot: str, address: str, service: str = "broadband"
) -> Notification:
    """Send a customer the confirmation of an order: its installation slot and address, by email."""
    to = email.strip()
    if not _EMAIL.match(to):
        raise Reject(f"{email!r} is not an email address I can send to.")
    subject, body = _confirmation(customer_name.strip(), order_id.strip(), slot.strip(), address.strip(), service)
    row_values = ("email", to, subject, body, order_id.strip(), slot.strip(), "queued",
                  dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))  # fmt: skip

    def queue(connection: sqlite3.Connection) -> sqlite3.Row:
        connection.execute(
            """INSERT INTO outbox (channel, recipient, subject, body, order_id, slot, status, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, slot, recipient) DO NOTHING""",
            row_values,
        )
        return connection.execute(
            "SELECT * FROM outbox WHERE order_id = ? AND slot = ? AND recipient = ?", (row_values[4], row_values[5], to)
        ).fetchone()

    message = _message(await outbox.write(queue))
    return Notification(notification_id=message.notification_id, channel=message.channel, to=message.to,
                        status=message.status)  # fmt: skip


@agent.skill(tags=["notification", "outbox"], examples=["show the outbox"])
async def list_outbox(limit: Annotated[int, Field(ge=1, le=500)] = 20) -> Outbox:
    """The latest messages in the outbox, newest first, with their full text."""

    def latest(connection: sqlite3.Connection) -> list[sqlite3.Row]:
        return connection.execute("SELECT * FROM outbox ORDER BY number DESC LIMIT ?", (limit,)).fetchall()

    return Outbox(messages=[_message(row) for row in await outbox.read(latest)])
