"""The demo's mystery-shopper audit visits: Grace Liu, the bank's auditor, visits seated merchants
across the circles over the six weeks. Most pass; a few have findings (no signage, staff who did
not know the programme, a card refused) and two fail. Corrective actions that fell due were closed
by the merchant's relationship manager, except one left overdue; Dockside Kitchen, whose people
sign in to the demo, has an open one to see in its portal."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from beyondbank.alliance import audits, merchants
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import AuditVisit, Merchant, MerchantStatus
from beyondbank.alliance.schemas import AuditVisitIn
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import User
from beyondbank.program.writer import Progress

VISITS_PER_CIRCLE = 3
PORTAL_MERCHANT = "Dockside Kitchen"  # its admin and counter staff sign in to the demo

# What a mystery shopper buys or asks for in each life domain, and its public price range (pence).
BASKETS: dict[LifeDomain, tuple[tuple[str, int, int], ...]] = {
    LifeDomain.DINING: (
        ("Set lunch for one", 1_200, 1_800),
        ("Flat white and a pastry", 550, 800),
        ("Dinner for two, no drinks", 4_500, 8_000),
    ),
    LifeDomain.LODGING: (
        ("One night in a double room", 9_000, 16_000),
        ("Three shirts laundered", 800, 1_200),
        ("Bedside lamp", 2_500, 4_500),
    ),
    LifeDomain.TRANSPORT: (
        ("Full valet", 2_500, 4_500),
        ("Interim service, asked for a quote", 12_000, 20_000),
        ("Day's parking", 1_200, 2_400),
    ),
    LifeDomain.TRAVEL: (
        ("Adult day ticket", 2_000, 3_500),
        ("Family ticket, two adults and two children", 6_000, 9_500),
    ),
    LifeDomain.SHOPPING: (
        ("Weekly basket of twelve items", 3_000, 6_000),
        ("Pair of trainers", 6_000, 11_000),
        ("Paperback and a notebook", 1_200, 2_000),
    ),
    LifeDomain.ENTERTAINMENT: (
        ("Two cinema tickets", 1_800, 2_800),
        ("Month's gym pass", 3_500, 6_000),
        ("Cut and blow-dry", 3_500, 6_500),
    ),
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the auditor found on one visit, and what the merchant must do about it."""

    staff_knew_programme: bool = True
    card_accepted: bool = True
    signage_displayed: bool = True
    price_not_below: bool = False  # the member was charged the public price for one item
    benefit_refused: bool = False
    action: str | None = None
    note: str | None = None


PASS = Scenario()
# Findings and fails in the order they are dealt out to the visits chosen for them.
TROUBLE = (
    Scenario(
        signage_displayed=False,
        action="Display the alliance sticker at the door and till.",
        note="No alliance sticker at the door or the till; the member price was given once asked.",
    ),
    Scenario(
        staff_knew_programme=False,
        action="Brief every shift on the member benefit; the bank's salon can help.",
        note="The server had not heard of the alliance; the manager applied the price.",
    ),
    Scenario(
        card_accepted=False,
        action="Enable the member card on every terminal.",
        note="The second till refused the card: 'not set up on this machine'.",
    ),
    Scenario(
        price_not_below=True,
        action="Charge members the agreed price: it must be below the price on the board.",
        note="Charged the board price for the first item despite the member code.",
    ),
    Scenario(
        benefit_refused=True,
        signage_displayed=False,
        action="Honour the member benefit at every till; display the alliance sticker.",
        note="Told the offer was 'weekends only'; the benefit runs every day.",
    ),
)
RESOLUTIONS = (
    "Checked on a follow-up call; the owner sent photos.",
    "Seen put right on my visit; staff briefed.",
    "Fixed the same week; confirmed with the manager.",
)


def populate_audits(
    factory: sessionmaker[Session], at: FixedClock, rng: random.Random, progress: Progress
) -> int:
    """Grace Liu's visits to seated merchants across the circles; returns how many."""
    now = at.now()
    with UnitOfWork(factory, at) as uow:
        auditor = _the_auditor(uow)
        plan = _plan(uow, rng, now)
        progress.start("audit visits", len(plan))
        for merchant, days_ago, scenario, overdue in plan:
            _visit(uow, at, rng, auditor, merchant, now, days_ago, scenario, leave_open=overdue)
            progress.advance("audit visits")
    at.set(now)
    return len(plan)


def _the_auditor(uow: UnitOfWork) -> User:
    return identity.users_with_role(uow, Role.AUDITOR)[0]


def _plan(
    uow: UnitOfWork, rng: random.Random, now: datetime
) -> list[tuple[Merchant, int, Scenario, bool]]:
    """Which merchant is visited how many days ago with what found; True for the one action
    left overdue."""
    named, _more = merchants.list_merchants(
        uow, SYSTEM, merchants.MerchantFilter(text=PORTAL_MERCHANT), cursor=None, limit=10
    )
    portal = next((m for m in _managed(uow, named) if m.trading_name == PORTAL_MERCHANT), None)
    chosen: list[Merchant] = [portal] if portal else []
    for circle in alliance.all_circles(uow):
        seated = [
            alliance.merchant_by_id(uow, seat.merchant_id)
            for seat in alliance.held_seats(uow, circle_id=circle.id)
        ]
        managed = [m for m in _managed(uow, seated) if m not in chosen]
        chosen += rng.sample(managed, min(VISITS_PER_CIRCLE, len(managed)))
    others = [m for m in chosen if m is not portal]
    plan: list[tuple[Merchant, int, Scenario, bool]] = []
    troubled = set(rng.sample(range(len(others)), min(len(TROUBLE) + 1, len(others))))
    dealt = iter(TROUBLE)
    for i, merchant in enumerate(others):
        days_ago = rng.randint(2, 40)
        scenario = next(dealt, PASS) if i in troubled else PASS
        plan.append((merchant, days_ago, scenario, False))
        if rng.random() < 0.3:  # a second, earlier visit that passed
            plan.append((merchant, min(days_ago + rng.randint(7, 14), 41), PASS, False))
    # One fail three weeks ago whose week to put things right ran out: overdue now.
    overdue_at = next((i for i, p in enumerate(plan) if p[2].price_not_below), None)
    if overdue_at is not None:
        merchant, _days, scenario, _ = plan[overdue_at]
        plan[overdue_at] = (merchant, 20, scenario, True)
    if portal is not None:
        plan.append((portal, 33, PASS, False))
        plan.append((portal, 9, TROUBLE[0], False))
    return sorted(plan, key=lambda p: -p[1])  # recorded in the order they happened


def _managed(uow: UnitOfWork, candidates: Sequence[Merchant]) -> list[Merchant]:
    """Active merchants with an open location and a relationship manager to close actions."""
    return [
        m
        for m in candidates
        if m.status == MerchantStatus.ACTIVE
        and any(loc.active for loc in m.locations)
        and alliance.current_manager_id(uow, m.id) is not None
    ]


def _visit(
    uow: UnitOfWork,
    at: FixedClock,
    rng: random.Random,
    auditor: User,
    merchant: Merchant,
    now: datetime,
    days_ago: int,
    scenario: Scenario,
    *,
    leave_open: bool,
) -> AuditVisit:
    location = next(loc for loc in merchant.locations if loc.active)
    zone = ZoneInfo(location.timezone)
    day = (now - timedelta(days=days_ago)).astimezone(zone).date()
    visited = datetime.combine(day, time(rng.randint(11, 18), rng.choice((0, 15, 30, 45))), zone)
    at.set(min(visited + timedelta(hours=2), now))  # recorded the same afternoon
    visit = audits.record_visit(
        uow,
        identity.principal_for_user(auditor),
        AuditVisitIn.model_validate(_body(rng, merchant, location.public_id, visited, scenario)),
    )
    action = visit.corrective_action
    if action is not None and not leave_open and action.due_on < now.astimezone(zone).date():
        _close(uow, at, rng, merchant, action.public_id, day, now)
    return visit


def _body(
    rng: random.Random, merchant: Merchant, location_id: str, visited: datetime, found: Scenario
) -> dict[str, Any]:
    sub = taxonomy().sub_industry(merchant.sub_industry)
    basket = BASKETS[sub.domain if sub else LifeDomain.SHOPPING]
    items = []
    for n, (description, low, high) in enumerate(rng.sample(basket, min(2, len(basket)))):
        public = rng.randint(low // 10, high // 10) * 10
        member = public - public * rng.randint(8, 20) // 100
        if found.price_not_below and n == 0:
            member = public
        items.append(
            {
                "description": description,
                "currency": "GBP",
                "public_price_minor": public,
                "alliance_price_minor": member,
                "benefit_honoured": not (found.benefit_refused and n == 0),
            }
        )
    return {
        "merchant_id": merchant.public_id,
        "location_id": location_id,
        "mode": "announced" if rng.random() < 0.25 else "mystery_shopper",
        "visited_at": visited,
        "staff_knew_programme": found.staff_knew_programme,
        "card_accepted": found.card_accepted,
        "signage_displayed": found.signage_displayed,
        "items": items,
        "notes": found.note,
        "corrective_action": found.action,
    }


def _close(
    uow: UnitOfWork,
    at: FixedClock,
    rng: random.Random,
    merchant: Merchant,
    action_id: str,
    visited_on: date,
    now: datetime,
) -> None:
    """The merchant's relationship manager closes the action a few days after the visit."""
    manager_id = alliance.current_manager_id(uow, merchant.id)
    assert manager_id is not None  # only managed merchants are visited
    manager = identity.users_by_ids(uow, {manager_id})[manager_id]
    actor = identity.principal_for_user(manager)
    closed = datetime.combine(visited_on + timedelta(days=rng.randint(2, 6)), time(16, 0), UTC)
    at.set(min(closed, now))
    action = audits.get_action(uow, actor, action_id)
    audits.close_action(uow, actor, action, rng.choice(RESOLUTIONS))
