"""The customers agent: the CRM. Looks customers up by account number and records new addresses.

Data: ``crm.db`` (one row per account), seeded from ``data/crm.json`` (accounts 1001-1005).
"""

from __future__ import annotations

import json
import re
import sqlite3

from pydantic import BaseModel, Field

from agents import Agent, Provider, Reject, ToolContext
from agents.customer_service.intent import normalise_address
from agents.customer_service.storage import SeededDatabase, load_seed

__all__ = ["Customer", "agent", "lookup_customer", "update_address"]

agent = Agent(
    "customers",
    "Customers agent: the CRM; looks up customers by account number and keeps their addresses",
    version="1.0.0",
    provider=Provider("agent-mesh customer service", "https://example.com/agent-mesh"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    account_id TEXT PRIMARY KEY, customer_name TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,
    current_address TEXT NOT NULL, services TEXT NOT NULL  -- a JSON list
);
"""


def _seed(connection: sqlite3.Connection) -> None:
    connection.executemany(
        "INSERT INTO customers VALUES (:account_id, :customer_name, :email, :phone, :current_address, :services)",
        [{**row, "services": json.dumps(row["services"])} for row in load_seed("crm.json")["customers"]],
    )


crm = SeededDatabase("crm.db", _SCHEMA, _seed)
agent.on_stop(crm.close)


class Customer(BaseModel):
    account_id: str
    customer_name: str
    email: str
    phone: str
    current_address: str  # where the customer lives now; not "address", which names the new one in a move
    services: list[str]
    confidence: float = Field(ge=0, le=1)


def _digits(text: str) -> str:
    return "".join(re.findall(r"\d", text))


async def _find(account_id: str, confidence: float) -> Customer | None:
    def find(connection: sqlite3.Connection) -> sqlite3.Row | None:
        return connection.execute("SELECT * FROM customers WHERE account_id = ?", (account_id,)).fetchone()

    row = await crm.read(find) if account_id else None
    return None if row is None else _customer(row, confidence)


def _customer(row: sqlite3.Row, confidence: float) -> Customer:
    return Customer(**{**dict(row), "services": json.loads(row["services"])}, confidence=confidence)


@agent.skill(
    tags=["customer", "crm", "account", "lookup"],
    examples=["look up account 1002", "who is customer 1001?"],
)
async def lookup_customer(account_id: str, ctx: ToolContext) -> Customer:
    """Look a customer up by account number: name, email, phone, current address and services.
    An unknown number is questioned once; a second miss is refused."""
    # Before the question only a read happens: safe to repeat when A2A re-runs the skill.
    customer = await _find(_digits(account_id), confidence=0.99)
    if customer is not None:
        return customer
    answer = await ctx.ask(f"I couldn't find account {account_id}. Could you check the account number?")
    customer = await _find(_digits(answer), confidence=0.9)
    if customer is None:
        raise Reject(
            f"Sorry, I couldn't find account {_digits(answer) or answer.strip()} either. "
            "Please check the number on your bill, or ask to speak to one of our team."
        )
    return customer


@agent.skill(tags=["customer", "crm", "address", "update"], examples=["update the address of account 1002"])
async def update_address(account_id: str, address: str) -> Customer:
    """Record a customer's new address (after a move); returns the updated customer."""
    account, new_address = _digits(account_id), normalise_address(address)
    if not new_address:
        raise Reject("I need the new address to update the account.")

    def update(connection: sqlite3.Connection) -> sqlite3.Row | None:
        connection.execute("UPDATE customers SET current_address = ? WHERE account_id = ?", (new_address, account))
        return connection.execute("SELECT * FROM customers WHERE account_id = ?", (account,)).fetchone()

    row = await crm.write(update) if account else None
    if row is None:
        raise Reject(f"Sorry, I couldn't find account {account_id}, so the address was not changed.")
    return _customer(row, confidence=0.99)
