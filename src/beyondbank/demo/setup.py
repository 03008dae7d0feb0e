"""Creating the demo: a fresh SQLite database with the demo programme, its people and some history.

The programme itself (branches, circles, merchants, members, benefits) goes through the program
import, as a bank's would. What the import does not cover goes through the services: staff,
merchant users and the bank app's API client; voucher redemptions at the counter over the six
weeks since launch; the relationship managers' visits and calls, some follow-ups overdue; the
auditor's mystery-shopper visits, one corrective action overdue.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from beyondbank import schema
from beyondbank.alliance import membership, relationships
from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance.models import (
    InteractionKind,
    Member,
    MemberStatus,
    Merchant,
    MerchantStatus,
)
from beyondbank.alliance.schemas import InteractionIn
from beyondbank.benefits import redemptions
from beyondbank.benefits import service as benefit_cases
from beyondbank.benefits.models import Benefit, BenefitStatus, Channel
from beyondbank.benefits.schemas import RedemptionIn
from beyondbank.core.authz import SYSTEM, Principal, Role
from beyondbank.core.clock import Clock, FixedClock
from beyondbank.core.db import make_engine
from beyondbank.core.errors import Problem
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import code_step, member_code
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.demo.audits import populate_audits
from beyondbank.demo.cards import populate_cards
from beyondbank.demo.catalogue import FIRST_NAMES, LAST_NAMES, MERCHANT_USERS, STAFF, Person
from beyondbank.demo.generate import (
    DEMO_CUSTOMER_NAME,
    DEMO_CUSTOMER_REF,
    demo_programme,
)
from beyondbank.demo.money import SHOP, populate_money
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.identity import service as identity
from beyondbank.identity.models import User
from beyondbank.program.service import import_program, importer
from beyondbank.program.source import from_data
from beyondbank.program.writer import NoProgress, Progress

DEMO_PASSWORD = "Thames-Harbour-2026"  # noqa: S105  (the demo's published password)
DEMO_DATABASE = "demo.db"
DEFAULT_MEMBERS = 3000
DEFAULT_SEED = 2026
LAUNCH_DAYS_AGO = 42
NAMED_CUSTOMERS = 40  # customers who have opened beyondbank from the bank's app already  # the programme went live six weeks ago
LONDON = ZoneInfo("Europe/London")
CLIENT_SCOPES = [
    "taxonomy:read",
    "circles:read",
    "merchants:read",
    "members:read",
    "members:write",
    "benefits:read",
]


@dataclass(frozen=True, slots=True)
class Login:
    role: str
    email: str
    name: str
    merchant: str | None = None


@dataclass(slots=True)
class Demo:
    """What the demo prints: where it is, and how each role signs in."""

    database_url: str
    password: str
    logins: list[Login]
    client_id: str
    client_secret: str
    customer_ref: str
    customer_name: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def demo_settings(directory: Path, base: Settings | None = None) -> Settings:
    """The served demo's settings: environment `demo`, the database under `directory`."""
    url = f"sqlite:///{(directory / DEMO_DATABASE).as_posix()}"
    # The demo's bank, whatever the environment says about a real one.
    bank = {
        "bank_name": "Thames & Harbour Bank",
        "default_currency": "GBP",
        "default_timezone": "Europe/London",
    }
    settings = base or Settings(environment="demo", database_url=url)
    return settings.model_copy(update={"environment": "demo", "database_url": url, **bank})


def fresh_database(directory: Path) -> None:
    """Remove the previous demo database (and SQLite's journal files beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        (directory / f"{DEMO_DATABASE}{suffix}").unlink(missing_ok=True)


def build_demo(
    directory: Path,
    *,
    settings: Settings,
    clock: Clock,
    members: int = DEFAULT_MEMBERS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> Demo:
    """Create (or recreate) the demo database in `directory` and fill it."""
    started = time.perf_counter()
    fresh_database(directory)
    engine = make_engine(settings.database_url)
    try:
        schema.upgrade(engine)
        demo = populate(
            engine, settings=settings, clock=clock, members=members, seed=seed, progress=progress
        )
        demo.counts.update(
            populate_cards(
                engine,
                directory,
                clock=clock,
                seed=seed,
                currency=settings.default_currency,
                progress=progress,
            ).as_counts()
        )
    finally:
        engine.dispose()
    demo.seconds = time.perf_counter() - started
    return demo


def populate(
    engine: Engine,
    *,
    settings: Settings,
    clock: Clock,
    members: int = DEFAULT_MEMBERS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> Demo:
    """Fill a migrated, empty database with the demo programme and its history."""
    progress = progress or NoProgress()
    now = clock.now()
    launch = now - timedelta(days=LAUNCH_DAYS_AGO)
    at = FixedClock(launch)  # the story's clock: moved forward as the weeks go by
    factory = make_session_factory(engine)
    rng = random.Random(seed)

    progress.start("staff", len(STAFF))
    with UnitOfWork(factory, at) as uow:
        staff = [_user(uow, person, None) for person in STAFF]
        for _ in staff:
            progress.advance("staff")

    progress.start("generating the programme", 1)
    document = demo_programme(members=members, seed=seed, launch=launch.date(), today=now.date())
    progress.advance("generating the programme")
    result = import_program(
        engine,
        from_data(document, "demo programme"),
        clock=at,
        default_currency=settings.default_currency,
        actor=importer("(demo)"),
        progress=progress,
    )

    with UnitOfWork(factory, at) as uow:
        by_name = _merchants_by_name(uow)
        merchant_users = [
            _user(uow, person, by_name[person.merchant or ""].id) for person in MERCHANT_USERS
        ]
        client, secret = identity.create_client(
            uow,
            SYSTEM,
            name="Thames & Harbour app backend",
            scopes=CLIENT_SCOPES,
            merchant_id=None,
        )
    _first_sign_ins(factory, at, settings, rng, min(members, NAMED_CUSTOMERS))
    redeemed = _redemptions(
        factory, at, settings, launch, now, rng, merchant_users, progress, min(240, members // 2)
    )
    with UnitOfWork(factory, at) as uow:
        shoppers = {m.customer_id for m in _active_members(uow)[:NAMED_CUSTOMERS]}
        shoppers |= set(identity.customer_ids_by_bank_refs(uow, [DEMO_CUSTOMER_REF]).values())
        active = _every_merchant(uow, merchant_cases.MerchantFilter(status=MerchantStatus.ACTIVE))
        merchant_ids = [m.public_id for m in active]
    money = populate_money(
        factory,
        at,
        settings,
        rng,
        launch=launch,
        now=now,
        customer_ids=shoppers,
        merchant_ids=merchant_ids,
        password=DEMO_PASSWORD,
        progress=progress,
    )
    at.set(now)
    interactions = _relationship_log(factory, at, rng, staff, progress)
    visits = populate_audits(factory, at, rng, progress)

    counts = dict(result.summary.counts)
    counts.update({"redemptions": redeemed, "interactions": interactions, "audit visits": visits})
    counts.update(
        {
            "deposit accounts": money.deposit_accounts,
            "shop products": money.shop.products,
            "shop orders": money.shop.orders,
            "shop orders completed": money.shop.completed,
            "shop returns": money.shop.returned,
            "group buys": money.shop.group_buys,
            "support tickets": money.shop.tickets,
            "NPS answers": money.shop.nps_answers,
            "settlement statements": money.statements,
            "payouts": money.payouts,
        }
    )
    return Demo(
        database_url=settings.database_url,
        password=DEMO_PASSWORD,
        logins=[Login(p.role, p.email, p.name, p.merchant) for p in (*STAFF, *MERCHANT_USERS)]
        + [Login(role.value, email, name, SHOP.name) for role, email, name in money.partner_logins],
        client_id=client.client_id,
        client_secret=secret,
        customer_ref=DEMO_CUSTOMER_REF,
        customer_name=DEMO_CUSTOMER_NAME,
        counts=counts,
    )


def _user(uow: UnitOfWork, person: Person, merchant_id: int | None) -> User:
    return identity.create_user(
        uow,
        SYSTEM,
        email=person.email,
        name=person.name,
        role=Role(person.role),
        merchant_id=merchant_id,
        password=DEMO_PASSWORD,
    )


def _every_merchant(uow: UnitOfWork, filters: merchant_cases.MerchantFilter) -> list[Merchant]:
    found: list[Merchant] = []
    cursor: str | None = None
    while True:
        rows, cursor = merchant_cases.list_merchants(
            uow, SYSTEM, filters, cursor=cursor, limit=MAX_LIMIT
        )
        found.extend(rows)
        if cursor is None:
            return found


def _merchants_by_name(uow: UnitOfWork) -> dict[str, Merchant]:
    return {m.trading_name: m for m in _every_merchant(uow, merchant_cases.MerchantFilter())}


def _first_sign_ins(
    factory: sessionmaker[Session],
    at: FixedClock,
    settings: Settings,
    rng: random.Random,
    count: int,
) -> None:
    """The first customers open beyondbank from the bank's app once, by single sign-on, as on
    launch day: that is how a customer's name reaches the platform (the bank's token carries
    it), so the demo bank app can list them by name."""
    with UnitOfWork(factory, at) as uow:
        for i in range(count):
            ref = f"THB{10000001 + i}"
            name = DEMO_CUSTOMER_NAME if ref == DEMO_CUSTOMER_REF else _person_name(rng)
            token = issue_demo_sso_token(settings, customer_ref=ref, name=name, now=at.now())
            identity.sso_sign_in(uow, settings, token)


def _person_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


# -- voucher redemptions at the counter --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Visit:
    """A member at a merchant's counter: plain values, so no row is read while redeeming."""

    at: datetime
    benefit_id: str
    merchant_id: int
    member_number: str
    amount: int | None


def _active_members(uow: UnitOfWork) -> list[Member]:
    found: list[Member] = []
    cursor: str | None = None
    while True:
        rows, cursor = membership.list_members(
            uow,
            status=MemberStatus.ACTIVE,
            customer_id=None,
            member_number=None,
            cursor=cursor,
            limit=MAX_LIMIT,
        )
        found.extend(rows)
        if cursor is None:
            return found


def _voucher_benefits(uow: UnitOfWork) -> list[Benefit]:
    found: list[Benefit] = []
    cursor: str | None = None
    while True:
        rows, cursor = benefit_cases.list_benefits(
            uow, SYSTEM, status=BenefitStatus.ACTIVE, cursor=cursor, limit=MAX_LIMIT
        )
        found.extend(b for b in rows if Channel.VOUCHER.value in b.channels)
        if cursor is None:
            return found


def _visit_time(rng: random.Random, benefit: Benefit, launch: datetime, now: datetime) -> datetime:
    """A local time within the benefit's hours, on one of its weekdays, since launch."""
    days = max(1, (now - launch).days - 1)
    for _ in range(20):
        day = (launch + timedelta(days=rng.randint(1, days))).astimezone(LONDON).date()
        if day.isoweekday() in benefit.weekdays:
            break
    hour = rng.randrange(benefit.hour_start, benefit.hour_end)
    local = datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=LONDON)
    return local.astimezone(UTC)


def _redemptions(
    factory: sessionmaker[Session],
    at: FixedClock,
    settings: Settings,
    launch: datetime,
    now: datetime,
    rng: random.Random,
    merchant_users: list[User],
    progress: Progress,
    wanted: int,
) -> int:
    """Members redeeming vouchers at the counter since launch, in time order; visits that the
    rules refuse (a limit reached, outside a targeted circle) are simply not made."""
    secret = settings.secret_key.get_secret_value()
    staff = {u.merchant_id: identity.principal_for_user(u) for u in merchant_users}
    till = Principal(kind="system", id=0, public_id="demo-till", label="demo point of sale")
    with UnitOfWork(factory, at) as uow:
        members = _active_members(uow)
        benefits = _voucher_benefits(uow)
        visits = []
        for _ in range(wanted * 2):
            benefit = rng.choice(benefits)
            amount = None
            if benefit.kind.value in ("percent_off", "amount_off", "spend_threshold"):
                floor = max(benefit.min_spend_minor, benefit.threshold_minor or 0, 1200)
                amount = floor + rng.randrange(0, 4000, 5)
            visits.append(
                _Visit(
                    at=_visit_time(rng, benefit, launch, now),
                    benefit_id=benefit.public_id,
                    merchant_id=benefit.merchant_id,
                    member_number=rng.choice(members).member_number,
                    amount=amount,
                )
            )
        # The claim of each Idempotency-Key is written in a transaction of its own: on SQLite
        # no other may be open meanwhile, so end this one (its reads are done).
        uow.commit()
        visits.sort(key=lambda v: v.at)
        progress.start("redemptions", len(visits))
        made = 0
        for i, visit in enumerate(visits):
            progress.advance("redemptions")
            if made >= wanted:
                continue
            at.set(visit.at)
            code = member_code(secret, visit.member_number, code_step(visit.at))
            request = RedemptionIn(
                code=code, benefit_id=visit.benefit_id, purchase_amount_minor=visit.amount
            )
            actor = staff.get(visit.merchant_id, till)
            try:
                redemptions.redeem(
                    uow,
                    actor,
                    request,
                    secret=secret,
                    idempotency_key=f"demo-redemption-{i}",
                    fingerprint=f"demo-redemption-{i}",
                    lock_seconds=settings.idempotency_in_flight_seconds,
                    render=lambda r: {"id": r.public_id},
                )
            except Problem:
                continue
            made += 1
    return made


# -- the relationship managers' log --------------------------------------------------------------

_NOTES = {
    InteractionKind.VISIT: (
        "Visited the shop: alliance sticker at the till, staff know how to scan member codes.",
        "Walked the premises with the owner; footfall up since the members' offer went live.",
    ),
    InteractionKind.CALL: (
        "Call with the owner about the members' offer for next quarter.",
        "Called about two member complaints on waiting times; owner will brief the weekend team.",
    ),
    InteractionKind.MEETING: (
        "Quarterly review: redemptions, settlement statement and the next campaign.",
        "Met the finance lead about moving settlement to weekly payouts.",
    ),
    InteractionKind.TRAINING_SALON: (
        "Training salon for the high street's merchants: card-linked offers and price integrity.",
    ),
}
_ACTIONS = (
    "Send the draft spring campaign",
    "Check the new terminal is registered",
    "Share the biweekly report",
    "Confirm the updated opening hours",
    "Review the members' feedback together",
)


def _relationship_log(
    factory: sessionmaker[Session],
    at: FixedClock,
    rng: random.Random,
    staff: list[User],
    progress: Progress,
) -> int:
    """Each manager's visits, calls, meetings and salons; some follow-ups done, some overdue."""
    now = at.now()
    managers = [u for u in staff if u.role == Role.RELATIONSHIP_MANAGER]
    logged = 0
    with UnitOfWork(factory, at) as uow:
        books = {
            m.id: _every_merchant(uow, merchant_cases.MerchantFilter(manager_id=m.id))
            for m in managers
        }
        progress.start("relationship log", sum(min(10, len(b)) for b in books.values()))
        for manager in managers:
            actor = identity.principal_for_user(manager)
            for merchant in rng.sample(books[manager.id], min(10, len(books[manager.id]))):
                for _ in range(rng.randint(1, 3)):
                    kind = rng.choice(list(_NOTES))
                    occurred = now - timedelta(days=rng.randint(2, 40), hours=rng.randint(0, 6))
                    due = occurred.date() + timedelta(days=rng.randint(3, 21))
                    with_action = rng.random() < 0.7
                    interaction = relationships.log_interaction(
                        uow,
                        actor,
                        merchant,
                        InteractionIn(
                            kind=kind,
                            occurred_at=occurred,
                            notes=rng.choice(_NOTES[kind]),
                            next_action=rng.choice(_ACTIONS) if with_action else None,
                            next_action_on=due if with_action else None,
                        ),
                    )
                    logged += 1
                    # Most follow-ups that fell due were done; the rest are overdue now.
                    if with_action and due < now.date() and rng.random() < 0.6:
                        relationships.complete_follow_up(uow, actor, interaction)
                progress.advance("relationship log")
    return logged
