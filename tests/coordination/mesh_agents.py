"""Small agents for the coordinator's tests, each served as its own `mesh serve` process.

Every execution of a skill that changes something is appended to the ledger file named by
``MESH_TEST_LEDGER`` (workflow id, step id, agent), so tests can prove nothing ran twice.
``MESH_TEST_DELAY`` slows the orders agent down so workflows are in flight when the coordinator
is killed; ``MESH_TEST_FAIL`` makes an instance fail every task (for fail-over).
"""

from __future__ import annotations

import asyncio
import os

from agents import Agent, ToolContext


def _ledger(ctx: ToolContext, agent: str) -> None:
    path = os.environ.get("MESH_TEST_LEDGER")
    if path:
        line = f"{ctx.metadata.get('meshWorkflow', '-')} {ctx.metadata.get('meshStep', '-')} {agent} {os.getpid()}\n"
        with open(path, "a") as ledger:
            ledger.write(line)


def _maybe_fail() -> None:
    if os.environ.get("MESH_TEST_FAIL"):
        raise RuntimeError("this instance is broken (MESH_TEST_FAIL)")


crm = Agent("crm", "Customer records: names and e-mail addresses by account number")
ACCOUNTS = {"1001": ("Ada Lovelace", "ada@example.com"), "1002": ("Alan Turing", "alan@example.com")}


@crm.skill(tags=["customer", "account"])
async def lookup_customer(account_id: str, ctx: ToolContext) -> dict:
    """Find a customer by account number."""
    _maybe_fail()
    while account_id not in ACCOUNTS:
        answer = await ctx.ask(f"I couldn't find account {account_id}. Could you check the account number?")
        account_id = "".join(ch for ch in answer if ch.isdigit())
    name, email = ACCOUNTS[account_id]
    return {"account_id": account_id, "customer_name": name, "email": email, "confidence": 1.0}


slots = Agent("slots", "Installation slots: books the first free engineer visit for an address")


@slots.skill(tags=["slot", "booking"])
async def book_slot(address: str, ctx: ToolContext) -> dict:
    """Book an installation slot at an address."""
    _maybe_fail()
    _ledger(ctx, "slots")
    return {"slot": "Tue 08:00-12:00", "address": address, "confidence": float(os.environ.get("MESH_TEST_CONFIDENCE", "0.9"))}


orders = Agent("orders", "Creates orders for booked installations")


@orders.skill(tags=["order"])
async def create_order(account_id: str, slot: str, ctx: ToolContext) -> dict:
    """Create an order for a customer's booked slot."""
    _maybe_fail()
    await asyncio.sleep(float(os.environ.get("MESH_TEST_DELAY", "0")))
    _ledger(ctx, "orders")
    return {"order_id": f"ORD-{account_id}-{abs(hash(ctx.metadata.get('meshWorkflow', ''))) % 100000:05d}"}


notify = Agent("notify", "Sends confirmations by e-mail")


@notify.skill(tags=["email", "confirmation"])
async def send_confirmation(email: str, order_id: str, ctx: ToolContext) -> dict:
    """E-mail an order confirmation."""
    _maybe_fail()
    _ledger(ctx, "notify")
    return {"sent_to": email}


shop = Agent("shop", "Opening hours of the shop and the support line")


@shop.skill(tags=["hours", "opening"], examples=["When does the shop open?"])
def opening_hours(question: str) -> str:
    """Tell when the shop and support are open."""
    return "The shop opens Monday to Saturday, 9:00 to 18:00."


timer = Agent("timer", "Waits a given time and says when it started (to show parallel steps)")


@timer.skill(tags=["wait"])
async def wait(seconds: float) -> dict:
    """Wait ``seconds`` and report the start and end times."""
    import time

    started = time.time()
    await asyncio.sleep(seconds)
    return {"started": started, "ended": time.time()}
