"""A good program file imports everything: circles, merchants with seats and waitlists, members
with cards, benefits with their status; YAML and JSON alike; written through the use cases."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Connection, select

from beyondbank.alliance import admission, membership
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    CardLink,
    Circle,
    ConsentRecord,
    Member,
    Merchant,
    MerchantStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from beyondbank.alliance.service import current_manager_id, held_seats
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.core.audit import TrailFilter, trail
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from beyondbank.program.service import import_program
from beyondbank.program.source import from_data, read_file
from tests import factories as f
from tests.program.conftest import EXAMPLE, Run, row_counts


def test_the_example_file_imports_everything(uow: UnitOfWork, run: Run, example_path: Path) -> None:
    result = run(read_file(example_path))

    assert result.written
    assert result.summary.counts["merchants"] == 7
    session = uow.session
    circles = {c.code: c for c in session.scalars(select(Circle))}
    assert set(circles) == {"canary-wharf", "shoreditch", "young-parents"}
    assert circles["canary-wharf"].center_latitude == pytest.approx(51.5054)  # from the branch
    assert circles["shoreditch"].radius_m == 2500
    assert len(circles["canary-wharf"].requirements) == 6

    seats = {(s.circle_id, s.sub_industry): s.merchant.trading_name for s in held_seats(uow)}
    cw, parents = circles["canary-wharf"].id, circles["young-parents"].id
    assert seats[(cw, "restaurant")] == "Dockside Kitchen"
    assert seats[(parents, "bakery_cafe")] == "Harbour Bakehouse"
    assert len(seats) == 6
    waiting = admission.slot_waitlist(uow, SYSTEM, circles["canary-wharf"], None)
    assert [(w.merchant_id, w.status) for w in waiting] == [
        (_merchant(uow, "Island Gardens Kitchen").id, WaitlistStatus.WAITING)
    ]
    statuses = {m.trading_name: m.status for m in session.scalars(select(Merchant))}
    assert statuses["Dockside Kitchen"] == MerchantStatus.ACTIVE
    assert statuses["Brick Lane Books"] == MerchantStatus.UNDER_REVIEW
    assert statuses["Old Street Cycles"] == MerchantStatus.REJECTED
    pending = session.scalars(
        select(Application).where(Application.status == ApplicationStatus.UNDER_REVIEW)
    ).one()
    assert pending.merchant.trading_name == "Brick Lane Books"
    assert {c.kind.value: c.passed for c in pending.checks}["licence_verified"] is False

    members, _ = membership.list_members(
        uow, status=None, customer_id=None, member_number=None, cursor=None, limit=50
    )
    assert len(members) == 3
    assert sorted(len(m.cards) for m in members) == [0, 1, 2]
    consents = {c.text_version: c.channel for c in session.scalars(select(ConsentRecord))}
    assert consents == {"alliance-terms-2026-01": "bank", "alliance-terms-2025-07": "branch"}

    benefits = {b.title: b for b in session.scalars(select(Benefit))}
    assert {b.status for b in benefits.values()} == {BenefitStatus.ACTIVE, BenefitStatus.SUBMITTED}
    lunch = benefits["15% off lunch on weekdays"]
    assert (lunch.status, lunch.merchant_share_bps, lunch.commission_bps) == (
        BenefitStatus.ACTIVE,
        8000,
        150,
    )
    treat = benefits["A free babyccino with every family breakfast"]
    assert treat.status == BenefitStatus.SUBMITTED
    assert [t.circle_id for t in treat.targets] == [parents]


def test_the_audit_trail_says_the_import_made_each_change(
    uow: UnitOfWork, run: Run, example_path: Path
) -> None:
    run(read_file(example_path))

    events, _ = trail(uow.session, TrailFilter(), cursor=None, limit=200)
    assert events
    assert {(e.actor_type, e.actor_id, e.actor_label) for e in events} == {
        ("system", "import", "program import program.yaml")
    }
    actions = {e.action for e in events}
    assert {"merchant.created", "seat.taken", "member.enrolled", "benefit.approve"} <= actions


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def test_json_imports_the_same_as_yaml(
    connection: Connection, clock: FixedClock, run: Run, example_path: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load(example_path.read_text())
    path = tmp_path / "program.json"
    path.write_text(json.dumps(_jsonable(data), indent=2))
    as_yaml = import_program(
        connection, read_file(example_path), clock=clock, default_currency="GBP", check_only=True
    )
    assert row_counts(connection)["merchants"] == 0  # a check writes nothing

    as_json = run(read_file(path))

    assert as_json.summary == as_yaml.summary
    assert row_counts(connection)["members"] == 3


def test_a_document_built_in_python_imports(run: Run, uow: UnitOfWork) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())

    run(from_data(data))

    assert len(held_seats(uow)) == 6


def test_a_manager_named_by_email_is_assigned_when_the_user_exists(
    uow: UnitOfWork, run: Run, example_path: Path
) -> None:
    manager = f.make_user(uow, Role.RELATIONSHIP_MANAGER, email="priya.shah@thames-harbour.example")
    data = yaml.safe_load(example_path.read_text())
    data["merchants"][0]["manager"] = "Priya.Shah@thames-harbour.example"
    data["merchants"][1]["manager"] = "nobody@thames-harbour.example"

    result = run(from_data(data))

    merchants = {m.trading_name: m for m in uow.session.scalars(select(Merchant))}
    assert current_manager_id(uow, merchants["Dockside Kitchen"].id) == manager.id
    assert current_manager_id(uow, merchants["Harbour Bakehouse"].id) is None
    assert [(w.path, w.message) for w in result.warnings] == [
        (
            "merchants.1.manager",
            "no active relationship manager with this email: imported without a manager",
        )
    ]


def test_an_exiting_incumbent_offers_its_slot_to_the_waitlist(
    uow: UnitOfWork, run: Run, example_path: Path
) -> None:
    """Statuses come last: the incumbent exits after the waiting merchant joined the queue."""
    admin = f.make_user(uow, Role.BANK_ADMIN)
    data = yaml.safe_load(example_path.read_text())
    data["merchants"][0]["status"] = "exited"  # Dockside Kitchen, holding the restaurant seat
    data["merchants"][0]["status_reason"] = "closed the Westferry Circus site"
    data["benefits"] = data["benefits"][1:]  # its live benefit cannot stay live

    run(from_data(data))

    entry = uow.session.scalars(select(WaitlistEntry)).one()
    assert entry.status == WaitlistStatus.OFFERED
    assert entry.offered_to_id == admin.id  # nobody manages the waiting merchant
    exited = _merchant(uow, "Dockside Kitchen")
    assert (exited.status, exited.status_reason) == (
        MerchantStatus.EXITED,
        "closed the Westferry Circus site",
    )
    assert not held_seats(uow, merchant_id=exited.id)


def test_cards_are_linked_to_their_members(uow: UnitOfWork, run: Run, example_path: Path) -> None:
    run(read_file(example_path))

    links = uow.session.scalars(select(CardLink).order_by(CardLink.card_token)).all()
    owners = {link.card_token: link.member_id for link in links}
    assert owners["tok_3f9a1c2e8b7d4a60"] == owners["tok_9b1d7e3a5c2f4e81"]
    member = uow.session.get_one(Member, owners["tok_3f9a1c2e8b7d4a60"])
    assert member.attributes == {
        "age": 34,
        "children": 2,
        "youngest_child_age": 3,
        "car_owner": False,
    }
    assert (member.home_latitude, member.work_longitude) == (51.4995, -0.0200)


def _merchant(uow: UnitOfWork, name: str) -> Merchant:
    return uow.session.scalars(select(Merchant).where(Merchant.trading_name == name)).one()


def test_the_documented_example_is_the_shipped_file() -> None:
    """docs/import-format.md shows the example in full: it must be the file a test imports."""
    doc = (EXAMPLE.parents[1] / "import-format.md").read_text()
    marker = "<!-- example: the block below is docs/examples/program.yaml"
    block = doc.split(marker, 1)[1].split("```yaml\n", 1)[1].split("\n```", 1)[0]
    assert block + "\n" == EXAMPLE.read_text()
