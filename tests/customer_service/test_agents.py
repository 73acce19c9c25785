"""The eight customer-service agents: their logic called directly, then a few real A2A round-trips.

Every test gets its own ``MESH_HOME`` (a temporary directory), so each starts from freshly seeded
databases; the agents read ``MESH_HOME`` at call time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import sqlite3

import httpx
import pytest

from agents.context import Artifact, InputNeeded, Reject, ToolContext
from agents.customer_service import (
    compliance, customers, eligibility, intent, knowledge, notification, orders, scheduling,
)  # fmt: skip
from agents.customer_service.manifest import AGENTS
from agents.customer_service.storage import SeededDatabase
from tests.support import A2A_HEADERS, AgentProcess, running_agent, send, skill_message, text_message

DATABASES = (
    customers.crm, knowledge.faq, eligibility.coverage, scheduling.scheduling, orders.orders, notification.outbox,
)  # fmt: skip


@pytest.fixture(autouse=True)
async def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    yield tmp_path
    for database in DATABASES:
        await database.close()


class Caller(ToolContext):
    """A caller who answers the skill's questions from a script (and records them)."""

    def __init__(self, *answers: str) -> None:
        self.script = list(answers)
        self.questions: list[str] = []

    @property
    def protocol(self) -> str:
        return "test"

    async def ask(self, question: str) -> str:
        self.questions.append(question)
        if not self.script:
            raise InputNeeded(question)
        return self.script.pop(0)

    async def progress(self, message: str, done: float | None = None, total: float | None = None) -> None:
        pass

    async def emit(self, artifact: Artifact) -> None:
        pass


# -- the manifest ---------------------------------------------------------------------------------


def test_every_manifest_target_is_an_agent_with_that_name():
    for process in AGENTS:
        module, attr = process.target.split(":")
        agent = getattr(importlib.import_module(module), attr)
        assert agent.name == process.name and agent.version == "1.0.0" and agent.skills


# -- intent ---------------------------------------------------------------------------------------


def test_intent_of_a_move_with_every_fact():
    result = intent.classify("I've moved to 12 Oak Street and need my broadband moved, account 1002")
    assert result.intent == result.playbook == "move_service"
    assert (result.account_id, result.address, result.service) == ("1002", "12 Oak Street", "broadband")
    assert result.confidence >= 0.8
    assert result.question.startswith("I've moved")


@pytest.mark.parametrize(
    ("request_text", "expected", "account", "address", "service"),
    [
        ("moving to 99 Elm Rd. soon, acct no. 1002, internet", "move_service", "1002", "99 Elm Road", "broadband"),
        ("Relocating my landline to 3 Kings Ct, account #1004", "move_service", "1004", "3 Kings Court", "phone"),
        ("I want to speak to a real person", "human", None, None, None),
        ("Get me your manager about my wifi", "human", None, None, "broadband"),
        ("What do the lights on my router mean?", "faq", None, None, None),
        ("When is my bill date?", "faq", None, None, None),
        ("Please cancel my tv, account number 1005", "cancel", "1005", None, "tv"),
        ("I'd like to get broadband at 4 Maple Avenue", "new_service", None, "4 Maple Avenue", "broadband"),
    ],
)
def test_intent_rules(request_text, expected, account, address, service):
    result = intent.classify(request_text)
    assert (result.intent, result.account_id, result.address, result.service) == (expected, account, address, service)
    assert result.confidence >= 0.6


@pytest.mark.parametrize("gibberish", ["asdfgh qwerty zxcv", "xyzzy plugh", "!!!", ""])
def test_gibberish_is_unknown_with_no_confidence(gibberish):
    result = intent.classify(gibberish)
    assert (result.intent, result.playbook, result.confidence) == ("unknown", "unknown", 0.0)


def test_address_normalisation():
    assert intent.normalise_address("12 oak st") == "12 Oak Street"
    assert intent.normalise_address("  7  MILL rd., springfield, ab3 6np ") == "7 Mill Road, Springfield, AB3 6NP"
    assert intent.find_address("the flat at 21b Station Rd is mine") == "21B Station Road"
    assert intent.find_address("2 miles down the road") is None


# -- customers ------------------------------------------------------------------------------------


async def test_lookup_of_a_known_account():
    customer = await customers.lookup_customer("1002", Caller())
    assert customer.customer_name == "Ben Okafor" and customer.email == "ben.okafor@example.com"
    assert customer.current_address == "7 Mill Road" and customer.services == ["broadband", "tv"]
    assert customer.confidence > 0.9


async def test_unknown_account_is_questioned_then_found():
    caller = Caller("Sorry, it's 1003")
    customer = await customers.lookup_customer("9999", caller)
    assert caller.questions == ["I couldn't find account 9999. Could you check the account number?"]
    assert customer.account_id == "1003" and customer.customer_name == "Chloe Dubois"


async def test_unknown_account_twice_is_refused():
    with pytest.raises(Reject, match="couldn't find account 8888 either"):
        await customers.lookup_customer("9999", Caller("8888"))


async def test_the_question_comes_before_any_side_effect():
    """On A2A the skill runs again when the answer arrives: before asking it must only have read."""
    with pytest.raises(InputNeeded):
        await customers.lookup_customer("account 77", Caller())


async def test_update_address_persists():
    updated = await customers.update_address("1002", "12 oak st")
    assert updated.current_address == "12 Oak Street"
    await customers.crm.close()  # as after a restart: read back from the file
    assert (await customers.lookup_customer("1002", Caller())).current_address == "12 Oak Street"
    with pytest.raises(Reject):
        await customers.update_address("4040", "1 Park Place")


# -- knowledge ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("What do the lights on my router mean?", "router-lights"),
        ("When is my bill date?", "bill-date"),
        ("How can I pay, by direct debit?", "payment-methods"),
        ("I'm moving house, can I take my broadband with me?", "moving-house"),
        ("what happens when the engineer comes for the installation", "installation-day"),
    ],
)
async def test_faq_answers_with_confidence(question, source):
    answer = await knowledge.search_faq(question)
    assert answer.source == source and answer.confidence >= 0.6 and answer.answer


async def test_faq_says_when_it_does_not_know():
    answer = await knowledge.search_faq("Is the weather nice in Lisbon today?")
    assert answer.confidence == 0.0 and answer.source == "" and "don't know" in answer.answer


# -- eligibility ----------------------------------------------------------------------------------


async def test_fibre_at_a_covered_address():
    result = await eligibility.check_availability("12 oak st", "internet")
    assert (result.address, result.postcode, result.available) == ("12 Oak Street", "AB1 2CD", True)
    assert result.technology == "fibre"
    assert result.confidence == 0.95 and result.max_speed_mbps == 900


async def test_an_unknown_street_is_unknown_with_low_confidence():
    result = await eligibility.check_availability("99 Elm Road")
    assert (result.available, result.technology, result.confidence) == (False, "unknown", 0.3)
    assert result.note == "address not found in the coverage database"


async def test_tv_needs_fibre():
    result = await eligibility.check_availability("7 Mill Road", "tv")
    assert (result.available, result.technology, result.confidence) == (False, "copper", 0.95)
    assert (await eligibility.check_availability("7 Mill Road", "phone")).available


# -- scheduling -----------------------------------------------------------------------------------


async def test_slots_are_two_windows_on_working_days_ahead():
    slots = (await scheduling.list_slots(limit=200)).slots
    days = sorted({dt.date.fromisoformat(s.date) for s in slots})
    assert len(days) == 10 and all(d.weekday() < 5 and d > dt.date.today() for d in days)
    assert {s.window for s in slots} == {"08:00-12:00", "13:00-17:00"}
    first = slots[0]
    assert first.slot == f"{days[0]:%a} {days[0].day} {days[0]:%b} 08:00-12:00"


async def test_booking_takes_the_earliest_free_slot():
    free = (await scheduling.list_slots(limit=2)).slots
    booking = await scheduling.book_installation("12 Oak Street", technology="fibre")
    assert (booking.slot_id, booking.slot, booking.technology) == (free[0].slot_id, free[0].slot, "fibre")
    assert (await scheduling.list_slots(limit=1)).slots[0].slot_id == free[1].slot_id


async def test_concurrent_bookings_never_share_a_slot():
    bookings = await asyncio.gather(*(scheduling.book_installation(f"{n} Oak Street") for n in range(1, 21)))
    assert len({b.slot_id for b in bookings}) == 20


async def test_concurrent_bookings_through_separate_connections_never_share_a_slot(home):
    """Two processes on one file: each has its own connection; SQLite's write lock decides."""
    await scheduling.list_slots()  # create and seed the file
    twin = SeededDatabase("scheduling.db", scheduling._SCHEMA)  # the file as another process sees it

    def book(connection: sqlite3.Connection) -> str:
        return connection.execute(
            "UPDATE slots SET booked_at = 'x' WHERE slot_id = (SELECT slot_id FROM slots WHERE booked_at IS NULL "
            "AND day > ? ORDER BY day, hours, engineer LIMIT 1) RETURNING slot_id",
            (dt.date.today().isoformat(),),
        ).fetchone()[0]

    try:
        mine = [scheduling.book_installation(f"{n} Oak Street") for n in range(15)]
        theirs = [twin.write(book) for _ in range(15)]
        results = await asyncio.gather(*mine, *theirs)
    finally:
        await twin.close()
    ids = [r.slot_id for r in results[:15]] + list(results[15:])
    assert len(set(ids)) == 30


async def test_no_free_slot_is_refused():
    total = len((await scheduling.list_slots(limit=200)).slots)
    await asyncio.gather(*(scheduling.book_installation("1 Park Place") for _ in range(total)))
    assert (await scheduling.list_slots()).slots == []
    with pytest.raises(Reject, match="every installation slot"):
        await scheduling.book_installation("1 Park Place")


# -- workflow (orders) ----------------------------------------------------------------------------


async def test_an_order_is_created_scheduled_and_tracked():
    order = await orders.create_order("1002", "broadband", "12 Oak Street", "SLOT-1")
    assert (order.order_id, order.status, order.kind, order.slot_id) == ("ORD-100001", "scheduled", "move", "SLOT-1")
    second = await orders.create_order("1001", "tv", "4 Maple Avenue", "SLOT-2", kind="new")
    assert second.order_id == "ORD-100002"
    assert await orders.order_status("ord-100001") == order


async def test_a_retried_order_is_not_duplicated():
    first = await orders.create_order("1002", "broadband", "12 Oak Street", "SLOT-1")
    retry = ("1002", "broadband", "12 Oak Street", "SLOT-1")
    again = await asyncio.gather(*(orders.create_order(*retry) for _ in range(5)))
    assert {o.order_id for o in again} == {first.order_id}
    with pytest.raises(Reject, match="already belongs to another order"):
        await orders.create_order("1003", "broadband", "12 Oak Street", "SLOT-1")


async def test_an_unknown_order_is_refused():
    with pytest.raises(Reject, match="couldn't find order ORD-424242"):
        await orders.order_status("ORD-424242")


# -- notification ---------------------------------------------------------------------------------


async def test_a_confirmation_goes_to_the_outbox_once():
    arguments = dict(email="ben.okafor@example.com", customer_name="Ben Okafor", order_id="ORD-100001",
                     slot="Tue 24 Nov 08:00-12:00", address="12 Oak Street")  # fmt: skip
    sent = await notification.send_confirmation(**arguments)
    assert (sent.channel, sent.to, sent.status) == ("email", "ben.okafor@example.com", "queued")
    assert (await notification.send_confirmation(**arguments)).notification_id == sent.notification_id
    (message,) = (await notification.list_outbox()).messages
    assert message.notification_id == sent.notification_id and "ORD-100001" in message.subject
    assert message.body.startswith("Dear Ben Okafor,")
    assert "12 Oak Street on Tue 24 Nov 08:00-12:00" in message.body


async def test_no_confirmation_to_a_non_address():
    with pytest.raises(Reject):
        await notification.send_confirmation("not-an-email", "Ben", "ORD-1", "Tue", "12 Oak Street")


# -- compliance -----------------------------------------------------------------------------------


def test_a_card_number_is_redacted_and_flagged():
    result = compliance.screen("My card is 4111 1111 1111 1111, please take the payment")
    assert result.flagged and result.reasons == ["payment card number"] and result.pii_found == ["payment_card"]
    assert result.redacted_request == "My card is [CARD], please take the payment"


def test_emails_and_phones_are_redacted_but_not_flagged():
    result = compliance.screen("Mail ben.okafor@example.com or call +44 7700 900102 about account 1002 and ORD-100001")
    assert not result.flagged and result.pii_found == ["email", "phone"]
    assert result.redacted_request == "Mail [EMAIL] or call [PHONE] about account 1002 and ORD-100001"


def test_numbers_failing_their_checksums_are_not_cards_or_ibans():
    result = compliance.screen("reference 4111111111111112 and GB00 WEST 1234 5698 7654 32")
    assert "payment_card" not in result.pii_found and "iban" not in result.pii_found


def test_ibans_passwords_and_threats():
    iban = compliance.screen("Refund to GB82 WEST 1234 5698 7654 32 THANKS")
    assert iban.redacted_request == "Refund to [IBAN] THANKS" and not iban.flagged
    secret = compliance.screen("my password is hunter2")
    assert secret.flagged and secret.redacted_request == "my password is [PASSWORD]"
    threat = compliance.screen("Fix it or I'll burn your shop down")
    assert threat.flagged and threat.reasons == ["threatening or abusive language"] and threat.pii_found == []


def test_a_clean_message_passes():
    result = compliance.check_message("Your order ORD-100001 is booked for Tue 24 Nov 08:00-12:00.")
    assert not result.flagged and result.pii_found == [] and result.confidence >= 0.9


# -- over A2A -------------------------------------------------------------------------------------


def _data(task: dict) -> dict:
    return task["artifacts"][0]["parts"][0]["data"]


async def test_intent_over_a2a_from_plain_text(home):
    async with running_agent(intent.agent, home) as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS, timeout=30) as client:
            text = "I've moved to 12 Oak Street and need my broadband moved, account 1002"
            task = (await send(client, text_message(text, "m-intent")))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    classification = _data(task)
    assert classification.pop("confidence") >= 0.8
    assert classification == {
        "intent": "move_service", "playbook": "move_service", "account_id": "1002", "address": "12 Oak Street",
        "service": "broadband", "question": text,
    }  # fmt: skip


async def test_customers_over_a2a_asks_for_an_unknown_account(home):
    async with running_agent(customers.agent, home) as service:
        async with httpx.AsyncClient(base_url=service.base_url, headers=A2A_HEADERS, timeout=30) as client:
            task = (await send(client, skill_message("lookup_customer", {"account_id": "9999"}, "m-c1")))["task"]
            assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
            question = task["status"]["message"]["parts"][0]["text"]
            assert question == "I couldn't find account 9999. Could you check the account number?"
            ids = {"taskId": task["id"], "contextId": task["contextId"]}
            task = (await send(client, text_message("oh, it's 1005", "m-c2", **ids)))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert _data(task)["customer_name"] == "Emma Lindqvist" and _data(task)["account_id"] == "1005"


async def test_scheduling_and_workflow_over_a2a(home):
    async with running_agent(scheduling.agent, home) as slots, running_agent(orders.agent, home) as workflow:
        async with (
            httpx.AsyncClient(base_url=slots.base_url, headers=A2A_HEADERS, timeout=30) as to_scheduling,
            httpx.AsyncClient(base_url=workflow.base_url, headers=A2A_HEADERS, timeout=30) as to_workflow,
        ):
            booked = await send(to_scheduling, skill_message("book_installation", {"address": "12 Oak Street"}, "m-s"))
            booking = _data(booked["task"])
            arguments = {"account_id": "1002", "service": "broadband", "address": "12 Oak Street",
                         "slot_id": booking["slot_id"]}  # fmt: skip
            ordered = await send(to_workflow, skill_message("create_order", arguments, "m-o"))
    assert booking["slot_id"].startswith("SLOT-") and booking["window"] == "08:00-12:00"
    order = _data(ordered["task"])
    assert order.pop("created_at")
    assert order == {"order_id": "ORD-100001", "status": "scheduled", "kind": "move", **arguments}


async def test_two_scheduling_processes_never_book_the_same_slot(home):
    """Replicas of the scheduling agent (`mesh serve`) on one MESH_HOME share the slots safely."""
    target = next(p.target for p in AGENTS if p.name == "scheduling")
    with AgentProcess(target, home) as first, AgentProcess(target, home) as second:
        async with httpx.AsyncClient(headers=A2A_HEADERS, timeout=30) as client:

            async def book(url: str, n: int) -> str:
                message = skill_message("book_installation", {"address": f"{n} Oak Street"}, f"m-{url[-5:]}-{n}")
                response = await client.post(url + "/", json={"jsonrpc": "2.0", "id": n, "method": "SendMessage",
                                                               "params": {"message": message}})  # fmt: skip
                task = response.json()["result"]["task"]
                assert task["status"]["state"] == "TASK_STATE_COMPLETED", task["status"]
                return _data(task)["slot_id"]

            slot_ids = await asyncio.gather(*(book(p.url, n) for n in range(10) for p in (first, second)))
    assert len(set(slot_ids)) == 20
