"""Relationship management in the console: logging an interaction through the form, follow-ups
overdue first, marking one done, and assigning managers from the relationships page."""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient

from beyondbank.alliance import relationships
from beyondbank.alliance.schemas import InteractionIn
from beyondbank.core.authz import Role
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.translated import chinese
from tests.web.conftest import World
from tests.web.pages import field_error, sign_in, submit, text_of


def _log_count(uow: UnitOfWork, world: World) -> int:
    rows, _ = relationships.list_interactions(uow, world.holder, cursor=None, limit=200)
    return len(rows)


def test_logging_an_interaction(client: TestClient, world: World, uow: UnitOfWork) -> None:
    sign_in(client, world.rm)
    form_path = f"/console/merchants/{world.holder.public_id}/interactions/new"
    form = client.get(form_path).text
    # The form starts at now, in the bank's time zone.
    assert 'name="occurred_at" type="datetime-local" value="2026-11-22T10:00"' in form
    response = submit(
        client,
        form_path,
        f"/console/merchants/{world.holder.public_id}/interactions",
        {
            "kind": "training_salon",
            "occurred_at": "2026-11-22T09:30",
            "notes": "Trained four staff on redeeming vouchers.",
            "next_action": "Check the first week's redemptions",
            "next_action_on": "2026-11-29",
        },
    )
    assert response.status_code == 303, response.text
    text = text_of(client.get(response.headers["location"].split("#")[0]).text)
    assert "The training salon with Dockside Diner is in the log." in text
    assert "Training salon · 22 Nov 2026, 09:30:00 · Raj Manager" in text
    assert "Check the first week's redemptions — due 29 Nov 2026 open" in text
    logged, _ = relationships.list_interactions(uow, world.holder, cursor=None, limit=1)
    assert logged[0].manager_id == world.rm.id
    assert logged[0].occurred_at.isoformat() == "2026-11-22T09:30:00+00:00"


def test_invalid_interaction_input_is_shown_beside_each_field_and_nothing_is_written(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    before = _log_count(uow, world)
    form_path = f"/console/merchants/{world.holder.public_id}/interactions/new"
    response = submit(
        client,
        form_path,
        f"/console/merchants/{world.holder.public_id}/interactions",
        {
            "kind": "call",
            "occurred_at": "2026-11-22T08:00",
            "notes": "",
            "next_action": "Send the contract",
        },
    )
    assert response.status_code == 422
    html = response.text
    assert field_error(html, "interaction-notes") == "This is required."
    assert (
        field_error(html, "interaction-next-action-on") == "a next action needs the date it is due"
    )
    assert field_error(html, "interaction-kind") is None
    assert 'value="Send the contract"' in html
    assert 'value="call" checked' in html
    assert _log_count(uow, world) == before


def test_an_interaction_in_the_future_is_refused_by_the_service_beside_the_field(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    before = _log_count(uow, world)
    form_path = f"/console/merchants/{world.holder.public_id}/interactions/new"
    response = submit(
        client,
        form_path,
        f"/console/merchants/{world.holder.public_id}/interactions",
        {"kind": "visit", "occurred_at": "2026-11-23T10:00", "notes": "Will visit"},
    )
    assert response.status_code == 422
    assert field_error(response.text, "interaction-occurred-at") == (
        "cannot be in the future; log interactions once held"
    )
    assert _log_count(uow, world) == before


def test_follow_ups_come_overdue_first_and_can_be_marked_done(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    rm = f.principal(world.rm)
    for action, due in (("Later task", date(2026, 12, 5)), ("Late task", date(2026, 11, 1))):
        relationships.log_interaction(
            uow,
            rm,
            world.holder,
            InteractionIn(
                kind="call",
                occurred_at=uow.clock.now().replace(day=1),
                notes="Called",
                next_action=action,
                next_action_on=due,
            ),
        )
    sign_in(client, world.rm)
    page = client.get("/console/relationships")
    text = text_of(page.text)
    order = [text.index(a) for a in ("Late task", "Send the training salon dates", "Later task")]
    assert order == sorted(order)
    assert "overdue 1 Nov 2026 Dockside Diner Late task" in text
    assert "today 22 Nov 2026" in text
    late = next(
        i
        for i in relationships.follow_ups(
            uow, rm, manager_id=None, overdue=True, today=date(2026, 11, 22), cursor=None, limit=10
        )[0]
    )
    done = submit(
        client,
        "/console/relationships",
        f"/console/interactions/{late.public_id}/follow-up-done",
        {"back": "/console/relationships?whose=mine"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/console/relationships?whose=mine"
    after = text_of(client.get(done.headers["location"]).text)
    assert "Follow-up marked done: Late task" in after
    table = after.split("Relationships My follow-ups", 1)[1].split("Merchants I look after")[0]
    assert "Late task" not in table
    assert "overdue 1 Nov" not in table
    # Marking it again says why not, on the page.
    again = submit(
        client,
        "/console/relationships",
        f"/console/interactions/{late.public_id}/follow-up-done",
        {},
    )
    assert "is done already" in client.get(again.headers["location"]).text


def test_the_overview_lists_my_overdue_follow_ups(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    relationships.log_interaction(
        uow,
        f.principal(world.rm),
        world.holder,
        InteractionIn(
            kind="meeting",
            occurred_at=uow.clock.now().replace(day=2),
            notes="Met",
            next_action="Send the menu photos",
            next_action_on=date(2026, 11, 10),
        ),
    )
    sign_in(client, world.rm)
    text = text_of(client.get("/console").text)
    assert "My overdue follow-ups due 10 Nov 2026 Dockside Diner: Send the menu photos" in text


def test_other_staff_choose_whose_follow_ups(client: TestClient, world: World) -> None:
    sign_in(client, world.auditor)
    page = client.get("/console/relationships")
    assert "Send the training salon dates" in page.text
    options = re.findall(r'<option value="([^"]+)"', page.text)
    assert options[0] == "everyone"
    assert world.rm.public_id in options
    assert "Mark done" not in page.text  # auditors read the log, they do not work it


def test_bank_admin_assigns_a_manager_from_the_relationships_page(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    nia = f.make_user(uow, Role.RELATIONSHIP_MANAGER, name="Nia Newman")
    sign_in(client, world.admin)
    missing = submit(
        client,
        "/console/relationships",
        "/console/relationships/assign",
        {"manager_id": nia.public_id},
    )
    assert missing.status_code == 422
    assert field_error(missing.text, "assign-merchant-id") == "Choose the merchant."
    assert f'<option value="{nia.public_id}" selected>' in missing.text
    response = submit(
        client,
        "/console/relationships",
        "/console/relationships/assign",
        {"merchant_id": world.applicant.public_id, "manager_id": nia.public_id},
    )
    assert response.status_code == 303
    assert "Nia Newman now looks after Wharf Bakery." in client.get("/console/relationships").text
    current = relationships.current_assignment(uow, world.applicant)
    assert current is not None
    assert current.manager_id == nia.id


def test_the_interaction_kinds_are_offered_in_the_viewers_language(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.rm)
    form = client.get(
        f"/console/merchants/{world.holder.public_id}/interactions/new",
        headers={"Accept-Language": "zh-CN"},
    ).text
    options = dict(
        re.findall(r'type="radio" name="kind" value="(\w+)"[^>]*> ([^<]+)</label>', form)
    )
    assert options["training_salon"] == chinese("training salon")
    assert options["visit"] == chinese("visit")
