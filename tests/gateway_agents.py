"""Agents the gateway tests call through the registry's MCP face: questions, progress, a long task."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

from agents import Agent, ToolContext
from agents.context import ToolError

warehouse = Agent("warehouse", "Stock levels, picking and shipping for the online shop", version="1.2.0")


class Stock(BaseModel):
    sku: str
    on_hand: int


class Shipment(BaseModel):
    order: str
    carrier: str


@warehouse.skill(tags=["stock", "inventory"], examples=["how many SKU-1 are left?"])
async def stock_level(sku: str) -> Stock:
    """How many units of a SKU are on hand."""
    if not sku.startswith("SKU-"):
        raise ToolError(f"unknown SKU {sku!r}: SKUs look like SKU-123")
    return Stock(sku=sku, on_hand=len(sku) * 7)


@warehouse.skill(tags=["shipping"])
async def ship_order(order: str, ctx: ToolContext) -> Shipment:
    """Ship an order; asks which carrier to use."""
    carrier = await ctx.ask(f"Which carrier should take order {order}?")
    return Shipment(order=order, carrier=carrier)


@warehouse.skill(tags=["inventory", "count"])
async def count_shelves(shelves: int, ctx: ToolContext) -> str:
    """Count the stock shelf by shelf, reporting each one."""
    for shelf in range(1, shelves + 1):
        await ctx.progress(f"counted shelf {shelf} of {shelves}", shelf, shelves)
        await asyncio.sleep(0.02)
    return f"{shelves} shelves counted"


@warehouse.skill(tags=["inventory", "audit"])
async def full_audit(ctx: ToolContext) -> str:
    """A stock audit that takes a very long time (the tests cancel it)."""
    marker = Path(os.environ.get("MESH_TEST_LEDGER", "audit.txt"))
    marker.write_text("started\n")
    try:
        await ctx.progress("auditing")
        await asyncio.sleep(120)
    except asyncio.CancelledError:
        marker.write_text("started\ncancelled\n")
        raise
    return "audited"


courier = Agent("courier", "Same-day courier bookings", version="0.3.0")


@courier.skill(tags=["delivery"])
def book_courier(postcode: str) -> str:
    """Book a same-day courier to a postcode."""
    return f"courier booked to {postcode}"
