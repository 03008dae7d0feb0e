"""Support tickets through the API: who sees what, the conversation's states, targets and overdue
lists, the partner's webhooks, and bad input that writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.commerce.models import SupportTicket, TicketMessage, WebhookEvent
from beyondbank.core.clock import FixedClock
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from tests.commerce.support.conftest import API, Shop, open_ticket


def events(uow: UnitOfWork, shop: Shop) -> list[tuple[str, dict[str, object]]]:
    uow.session.expire_all()
    rows = uow.session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.partner_id == shop.partner.id)
        .order_by(WebhookEvent.id)
    )
    return [(e.event_type, e.payload["data"]) for e in rows]


def say(client: TestClient, shop: Shop, who: str, ticket: str, text: str) -> dict[str, object]:
    response = client.post(
        f"{API}/support/tickets/{ticket}/messages", json={"body": text}, headers=shop.h[who]
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_customer_opens_a_ticket_about_its_order_with_the_partners_targets(
    client: TestClient, uow: UnitOfWork, shop: Shop, clock: FixedClock
) -> None:
    ticket = open_ticket(client, shop)
    assert ticket["status"] == "open"
    assert ticket["partner_id"] == shop.partner.public_id
    assert ticket["order_id"] == shop.order.public_id
    assert ticket["customer_id"] == shop.customer.public_id
    now = clock.now()
    assert datetime.fromisoformat(ticket["first_response_due_at"]) == now + timedelta(hours=2)
    assert datetime.fromisoformat(ticket["resolution_due_at"]) == now + timedelta(hours=24)
    assert ticket["first_responded_at"] is None
    assert [(m["author"], m["body"]) for m in ticket["messages"]] == [("customer", "Too small.")]
    ((kind, data),) = events(uow, shop)
    assert kind == "ticket.opened"
    assert data["ticket_id"] == ticket["id"]
    assert data["order_id"] == shop.order.public_id
    assert data["message"] == "Too small."
    assert "customer_id" not in data  # the partner learns what the customer wrote, no more


def test_a_general_question_names_the_partner(client: TestClient, shop: Shop) -> None:
    ticket = open_ticket(client, shop, order_id=None, partner_id=shop.other_partner.public_id)
    assert ticket["partner_id"] == shop.other_partner.public_id
    assert ticket["order_id"] is None


def test_each_side_sees_only_its_own_tickets(client: TestClient, shop: Shop) -> None:
    ticket = open_ticket(client, shop)
    url = f"{API}/support/tickets/{ticket['id']}"
    for who in ("customer", "partner_admin", "partner_staff", "partner_client", "auditor"):
        assert client.get(url, headers=shop.h[who]).status_code == 200, who
    for who in ("other_customer", "other_partner_admin"):
        assert client.get(url, headers=shop.h[who]).status_code == 404, who
        listed = client.get(f"{API}/support/tickets", headers=shop.h[who]).json()["items"]
        assert listed == [], who
    partner_view = client.get(url, headers=shop.h["partner_admin"]).json()
    assert partner_view["customer_id"] is None
    bank_view = client.get(url, headers=shop.h["relationship_manager"]).json()
    assert bank_view["customer_id"] == shop.customer.public_id
    mine = client.get(f"{API}/support/tickets", headers=shop.h["partner_staff"]).json()
    assert [t["id"] for t in mine["items"]] == [ticket["id"]]


def test_the_conversation_moves_the_ticket_and_tells_the_partner(
    client: TestClient, uow: UnitOfWork, shop: Shop, clock: FixedClock
) -> None:
    ticket = open_ticket(client, shop)["id"]
    clock.advance(timedelta(minutes=30))
    answered = say(client, shop, "partner_staff", ticket, "Send it back, we swap it.")
    assert answered["status"] == "answered"
    first = answered["first_responded_at"]
    assert first is not None
    clock.advance(timedelta(minutes=5))
    assert (
        say(client, shop, "partner_client", ticket, "Label attached.")["first_responded_at"]
        == first
    )
    assert say(client, shop, "customer", ticket, "Which address?")["status"] == "open"
    bank = say(client, shop, "relationship_manager", ticket, "The bank is following this.")
    assert bank["status"] == "open"  # the bank's word neither answers nor reopens
    assert [m["author"] for m in bank["messages"]] == [
        "customer",
        "partner",
        "partner",
        "customer",
        "bank",
    ]
    # The partner hears of every message but its own.
    assert [(k, d["by"]) for k, d in events(uow, shop)] == [
        ("ticket.opened", "customer"),
        ("ticket.message", "customer"),
        ("ticket.message", "bank"),
    ]


def test_resolving_closing_and_reopening(client: TestClient, shop: Shop) -> None:
    ticket = open_ticket(client, shop)["id"]
    url = f"{API}/support/tickets/{ticket}"
    closed_early = client.post(f"{url}/close", headers=shop.h["customer"])
    assert closed_early.status_code == 409
    assert closed_early.json()["current_status"] == "open"
    resolved = client.post(f"{url}/resolve", headers=shop.h["customer"]).json()
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] is not None
    reopened = say(client, shop, "customer", ticket, "Still broken.")
    assert (reopened["status"], reopened["resolved_at"]) == ("open", None)
    assert client.post(f"{url}/resolve", headers=shop.h["partner_admin"]).json()["status"] == (
        "resolved"
    )
    partner_late = client.post(
        f"{url}/messages", json={"body": "One more thing"}, headers=shop.h["partner_admin"]
    )
    assert partner_late.status_code == 409
    closed = client.post(f"{url}/close", headers=shop.h["partner_admin"]).json()
    assert closed["status"] == "closed"
    after = client.post(f"{url}/messages", json={"body": "Hello?"}, headers=shop.h["customer"])
    assert after.status_code == 409
    assert after.json()["type"] == "/problems/invalid-transition"
    assert after.json()["current_status"] == "closed"


def test_partners_and_the_bank_cannot_open_tickets(client: TestClient, shop: Shop) -> None:
    body = {"partner_id": shop.partner.public_id, "subject": "Hi", "message": "Hello"}
    for who in ("partner_admin", "relationship_manager"):
        response = client.post(f"{API}/support/tickets", json=body, headers=shop.h[who])
        assert response.status_code == 403, who


def test_bad_input_is_refused_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, shop: Shop
) -> None:
    cases = [
        ({"order_id": shop.order.public_id, "subject": "Hi", "message": "   "}, "body.message"),
        ({"order_id": shop.order.public_id, "subject": "", "message": "x"}, "body.subject"),
        ({"order_id": shop.order.public_id, "subject": "s" * 201, "message": "x"}, "body.subject"),
        (
            {"order_id": "ord_01HZZZZZZZZZZZZZZZZZZZZZZZ", "subject": "Hi", "message": "x"},
            "body.order_id",
        ),
        (
            {"order_id": shop.other_order.public_id, "subject": "Hi", "message": "x"},
            "body.order_id",
        ),
        ({"subject": "Hi", "message": "x"}, "body.partner_id"),
        ({"partner_id": "prt_nobody", "subject": "Hi", "message": "x"}, "body.partner_id"),
        (
            {
                "order_id": shop.order.public_id,
                "partner_id": shop.other_partner.public_id,
                "subject": "Hi",
                "message": "x",
            },
            "body.partner_id",
        ),
    ]
    for body, field in cases:
        response = client.post(f"{API}/support/tickets", json=body, headers=shop.h["customer"])
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    ticket = open_ticket(client, shop)["id"]
    empty = client.post(
        f"{API}/support/tickets/{ticket}/messages",
        json={"body": " \n "},
        headers=shop.h["customer"],
    )
    assert empty.status_code == 422
    uow.session.expire_all()
    assert uow.session.scalar(select(func.count()).select_from(SupportTicket)) == 1
    assert uow.session.scalar(select(func.count()).select_from(TicketMessage)) == 1


def test_partner_and_bank_changes_are_audited(
    client: TestClient, uow: UnitOfWork, shop: Shop
) -> None:
    ticket = open_ticket(client, shop)["id"]
    say(client, shop, "partner_admin", ticket, "On it.")
    client.post(f"{API}/support/tickets/{ticket}/resolve", headers=shop.h["relationship_manager"])
    uow.session.expire_all()
    trail = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == ticket).order_by(AuditEvent.id)
    ).all()
    assert [(a.action, a.actor_role) for a in trail] == [
        ("ticket.opened", "customer"),
        ("ticket.message", "partner_admin"),
        ("ticket.resolved", "relationship_manager"),
    ]
    assert trail[1].before == {"status": "open"}
    assert trail[1].after is not None
    assert trail[1].after["status"] == "answered"


def test_the_overdue_list_says_which_target_was_missed_and_by_how_much(
    client: TestClient, shop: Shop, clock: FixedClock
) -> None:
    silent = open_ticket(client, shop)["id"]  # never answered
    answered = open_ticket(client, shop)["id"]
    resolved = open_ticket(client, shop)["id"]
    clock.advance(timedelta(hours=1))
    say(client, shop, "partner_admin", answered, "Looking into it.")
    client.post(f"{API}/support/tickets/{resolved}/resolve", headers=shop.h["customer"])
    other = open_ticket(client, shop, order_id=None, partner_id=shop.other_partner.public_id)[
        "id"
    ]  # the other partner's default targets: 24 h and 120 h

    clock.advance(timedelta(hours=2))  # 3 h after opening: the first answer was due at 2 h
    late = client.get(f"{API}/support/overdue", headers=shop.h["partner_admin"]).json()
    assert [
        (t["id"], [(b["target"], b["late_by_minutes"]) for b in t["breaches"]])
        for t in late["items"]
    ] == [(silent, [("first_response", 60)])]

    clock.advance(timedelta(hours=23))  # 26 h: resolution was due at 24 h
    late = client.get(f"{API}/support/overdue", headers=shop.h["partner_staff"]).json()
    assert [
        (t["id"], [(b["target"], b["late_by_minutes"]) for b in t["breaches"]])
        for t in late["items"]
    ] == [
        (silent, [("first_response", 24 * 60), ("resolution", 120)]),
        (answered, [("resolution", 120)]),
    ]
    everything = client.get(f"{API}/support/overdue", headers=shop.h["auditor"]).json()
    # The other partner's first answer was due at 25 h: an hour late, listed last.
    assert [t["id"] for t in everything["items"]] == [silent, answered, other]
    assert (
        client.get(f"{API}/support/overdue", headers=shop.h["other_partner_admin"]).json()["items"][
            0
        ]["id"]
        == other
    )
    assert client.get(f"{API}/support/overdue", headers=shop.h["customer"]).status_code == 403
