"""Our side of the foreign-agent tests (tests/test_foreign_agents.py): a warehouse agent on our runtime.

It packs orders (priced in USD, weighed) and invoices them in EUR once the foreign agents have
quoted the goods (fx-quotes, A2A JS SDK 1.0) and the shipping (shipping-rates, A2A 0.3).
"""

from __future__ import annotations

from agents import Agent

warehouse = Agent("warehouse", "Packs orders (price in USD, weight) and invoices them in EUR")
CATALOG = {"KB-42": (40, 0.5), "MS-7": (25, 0.25)}  # sku: (unit price in USD, unit weight in kg)


@warehouse.skill(tags=["order", "packing"])
def pack_order(sku: str, quantity: int, ship_to: str) -> dict:
    """Pack an order: its total in USD and its parcel weight."""
    price, weight = CATALOG[sku]
    return {"order_id": f"ORD-{sku}-{quantity}", "order_total": price * quantity, "currency": "USD",
            "weight_kg": weight * quantity, "ship_to": ship_to}


@warehouse.skill(tags=["invoice"])
def invoice(order_id: str, goods_eur: float, shipping_eur: float) -> dict:
    """Invoice an order in EUR: goods plus shipping."""
    return {"invoice_id": f"INV-{order_id}", "total_eur": round(goods_eur + shipping_eur, 2)}
