"""The demo: a generated programme the import accepts, and a database with everything the demo
promises (six life domains, one merchant per slot, a waitlist, thousands of members, every kind
of benefit on every channel, history), set up by `beyondbank demo` in a directory of its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select
from typer.testing import CliRunner

from beyondbank import cli
from beyondbank.alliance import audits
from beyondbank.alliance.models import (
    AuditVisit,
    Circle,
    CircleKind,
    CorrectiveAction,
    CorrectiveActionStatus,
    Interaction,
    Member,
    Merchant,
    MerchantStatus,
    Seat,
    VisitOutcome,
    WaitlistEntry,
    WaitlistStatus,
)
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.benefits.models import Benefit, BenefitKind, BenefitStatus, Channel, Redemption
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.db import make_engine
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.demo import setup
from beyondbank.demo.catalogue import EMAIL_DOMAIN
from beyondbank.demo.generate import demo_programme
from beyondbank.identity.models import ApiClient, User
from beyondbank.program.service import import_program
from beyondbank.program.source import from_data
from tests import factories as f
from tests.conftest import T0

SMALL = 400  # members: enough to see the shape, quick enough for every run

# The demo database is built once, for the module: its tests share one test process.
pytestmark = pytest.mark.xdist_group("demo")


def _programme(members: int = SMALL) -> dict[str, Any]:
    return demo_programme(members=members, launch=(T0 - timedelta(days=42)).date(), today=T0.date())


def test_the_generated_programme_passes_the_import_validation(
    connection: Connection, uow: UnitOfWork, clock: FixedClock
) -> None:
    for person in ("james.okafor", "priya.shah", "tom.gallagher"):
        f.make_user(uow, Role.RELATIONSHIP_MANAGER, email=f"{person}@{EMAIL_DOMAIN}")
    clock.set(T0 - timedelta(days=42))

    result = import_program(
        connection, from_data(_programme()), clock=clock, default_currency="GBP", check_only=True
    )

    assert result.warnings == []
    counts = result.summary.counts
    assert counts["members"] == SMALL
    assert counts["merchants"] > 80
    assert counts["waitlisted"] == 3


def test_the_same_seed_gives_the_same_programme() -> None:
    assert _programme(50) == _programme(50)
    assert demo_programme(members=50, seed=7, launch=T0.date(), today=T0.date()) != _programme(50)


def test_thousands_of_members_by_default() -> None:
    programme = demo_programme(launch=T0.date(), today=T0.date())
    members = programme["members"]
    assert len(members) == setup.DEFAULT_MEMBERS >= 2000
    tokens = [card["card_token"] for m in members for card in m["cards"]]
    assert len(tokens) == len(set(tokens))
    assert {len(m["cards"]) for m in members} == {1, 2}


# -- the demo database ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """`beyondbank demo`'s setup step in a directory of its own, with a smaller membership."""
    directory = tmp_path_factory.mktemp("demo") / "var"
    settings = setup.demo_settings(directory)
    demo = setup.build_demo(
        directory, settings=settings, clock=FixedClock(T0), members=SMALL, seed=2026
    )
    assert demo.counts["members"] == SMALL
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def demo_uow(demo_database: Engine) -> Iterator[UnitOfWork]:
    with UnitOfWork(make_session_factory(demo_database), FixedClock(T0)) as uow:
        yield uow


def test_every_life_domain_has_merchants_holding_seats(demo_uow: UnitOfWork) -> None:
    session = demo_uow.session
    held = session.scalars(select(Seat).where(Seat.released_at.is_(None))).all()
    domains = {taxonomy().sub_industry(s.sub_industry).domain for s in held}  # type: ignore[union-attr]
    assert domains == set(LifeDomain)
    geographic = session.scalars(select(Circle).where(Circle.kind == CircleKind.GEOGRAPHIC))
    for circle in geographic:
        circle_domains = {
            taxonomy().sub_industry(s.sub_industry).domain  # type: ignore[union-attr]
            for s in held
            if s.circle_id == circle.id
        }
        assert len(circle_domains) >= 5, circle.code


def test_one_merchant_per_slot(demo_uow: UnitOfWork) -> None:
    held = demo_uow.session.scalars(select(Seat).where(Seat.released_at.is_(None))).all()
    slots = Counter((s.circle_id, s.sub_industry) for s in held)
    assert slots.most_common(1)[0][1] == 1
    assert len(held) > 80


def test_a_waitlist_with_one_slot_offered(demo_uow: UnitOfWork) -> None:
    entries = demo_uow.session.scalars(select(WaitlistEntry)).all()
    assert Counter(e.status for e in entries) == {
        WaitlistStatus.WAITING: 2,
        WaitlistStatus.OFFERED: 1,
    }
    offered = next(e for e in entries if e.status == WaitlistStatus.OFFERED)
    manager = demo_uow.session.get_one(User, offered.offered_to_id)
    assert manager.role == Role.RELATIONSHIP_MANAGER


def test_the_pipeline_has_every_kind_of_case(demo_uow: UnitOfWork) -> None:
    statuses = Counter(demo_uow.session.scalars(select(Merchant.status)))
    assert statuses[MerchantStatus.ACTIVE] > 70
    for status in ("applied", "under_review", "rejected", "suspended", "exited"):
        assert statuses[MerchantStatus(status)] >= 1, status


def test_members_live_near_branches_with_cards(demo_uow: UnitOfWork) -> None:
    session = demo_uow.session
    members = session.scalars(select(Member)).all()
    assert len(members) == SMALL
    assert all(m.cards for m in members)
    assert all(m.home_latitude is not None for m in members)
    assert sum(bool(m.attributes.get("car_owner")) for m in members) > SMALL // 4


def test_benefits_of_every_kind_on_every_channel(demo_uow: UnitOfWork) -> None:
    benefits = demo_uow.session.scalars(select(Benefit)).all()
    offered = {(b.kind, channel) for b in benefits for channel in b.channels}
    assert offered == {(kind, channel.value) for kind in BenefitKind for channel in Channel}
    statuses = Counter(b.status for b in benefits)
    assert statuses[BenefitStatus.ACTIVE] > 60
    assert statuses[BenefitStatus.SUBMITTED] >= 5  # awaiting the bank's approval


def test_history_redemptions_and_overdue_follow_ups(demo_uow: UnitOfWork) -> None:
    session = demo_uow.session
    redeemed = session.scalars(select(Redemption)).all()
    assert len(redeemed) >= 100
    assert all(r.redeemed_at < T0 for r in redeemed)
    overdue = session.scalar(
        select(func.count())
        .select_from(Interaction)
        .where(Interaction.next_action_on < T0.date(), Interaction.follow_up_done_at.is_(None))
    )
    assert overdue


def test_the_auditor_visited_merchants_across_the_circles(demo_uow: UnitOfWork) -> None:
    """Grace Liu's visits: most pass, some with findings, two fail; every action that fell due
    was closed by the merchant's manager but one, overdue; Dockside Kitchen has an open one."""
    session = demo_uow.session
    visits = session.scalars(select(AuditVisit)).all()
    assert len(visits) >= 10
    grace = session.scalars(select(User).where(User.name == "Grace Liu")).one()
    assert {v.auditor_id for v in visits} == {grace.id}
    assert all(v.visited_at < T0 for v in visits)
    outcomes = Counter(v.outcome for v in visits)
    assert outcomes[VisitOutcome.PASS] > outcomes[VisitOutcome.FINDINGS] >= 2
    assert outcomes[VisitOutcome.FAIL] == 2
    seated = {s.merchant_id: s.circle_id for s in session.scalars(select(Seat))}
    assert len({seated[v.merchant_id] for v in visits}) >= 4  # across the circles
    actions = session.scalars(select(CorrectiveAction)).all()
    assert len(actions) == outcomes[VisitOutcome.FINDINGS] + outcomes[VisitOutcome.FAIL]
    overdue = [a for a in actions if audits.is_overdue(a, T0.date())]
    assert len(overdue) == 1
    assert all(a.closed_by_id is not None for a in actions if a.status == "closed")
    kitchen = session.scalars(
        select(Merchant.id).where(Merchant.trading_name == "Dockside Kitchen")
    ).one()
    own = [a for a in actions if a.merchant_id == kitchen]
    assert [a.status for a in own] == [CorrectiveActionStatus.OPEN]


def test_a_login_for_every_role_and_a_client(demo_uow: UnitOfWork) -> None:
    roles = set(demo_uow.session.scalars(select(User.role)))
    assert roles == set(Role) - {Role.CUSTOMER}
    client = demo_uow.session.scalars(select(ApiClient)).one()
    assert "members:write" in client.scopes


# -- the command ----------------------------------------------------------------------------------


def test_the_demo_command_sets_up_in_var_and_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    served: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))

    result = CliRunner().invoke(cli.app, ["demo", "--port", "8123", "--members", "60"])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "demo.db").exists()
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert served["app"].state.settings.environment == "demo"
    output = result.output
    assert "http://127.0.0.1:8123/login" in output
    assert f"olivia.bennett@{EMAIL_DOMAIN}" in output
    assert setup.DEMO_PASSWORD in output
    assert "http://127.0.0.1:8123/demo/bank-app" in output
    assert "beyondbank sso token --customer THB10000001" in output
    assert "client_secret " in output


def test_a_second_demo_starts_from_a_fresh_database(tmp_path: Path) -> None:
    """`beyondbank demo` run again recreates the database (`build_demo` starts here), leaving
    none of the last one's rows or SQLite's journal files behind."""
    directory = tmp_path / "var"
    directory.mkdir()
    engine = make_engine(setup.demo_settings(directory).database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE leftover (id INTEGER)")
    engine.dispose()
    for suffix in ("-wal", "-shm", "-journal"):
        (directory / f"{setup.DEMO_DATABASE}{suffix}").write_bytes(b"stale")

    setup.fresh_database(directory)

    assert sorted(p.name for p in directory.iterdir()) == []


def test_a_demo_started_now_has_dates_that_make_sense() -> None:
    now = datetime.now(UTC)
    programme = demo_programme(
        members=1, launch=(now - timedelta(days=42)).date(), today=now.date()
    )
    assert all(b["valid_to"] > now.date().isoformat() for b in programme["benefits"])


def test_the_demo_populates_postgresql_too(committing_engine: Engine) -> None:
    """The demo's database is SQLite, but nothing in it is SQLite's: the same data loads into
    PostgreSQL through the same import and services."""
    demo = setup.populate(
        committing_engine,
        settings=setup.demo_settings(Path("unused")),
        clock=FixedClock(T0),
        members=120,
    )

    assert demo.counts["members"] == 120
    with committing_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Member)) == 120
        assert connection.scalar(select(func.count()).select_from(Redemption)) > 0


def test_the_first_customers_have_signed_in_once(demo_uow: UnitOfWork) -> None:
    """Names reach the platform in the bank's sign-on token: the demo bank app lists them."""
    from beyondbank.identity.models import Customer

    customer = demo_uow.session.scalars(
        select(Customer).where(Customer.bank_ref == "THB10000001")
    ).one()
    assert customer.name == "Amelia Clarke"
    assert customer.last_seen_at is not None


def test_money_moves_through_the_ledger_and_last_month_is_settled(demo_uow: UnitOfWork) -> None:
    """Deposit accounts, the shop's sales paid through the bank, vouchers' shares and
    commissions, October's statements closed and paid: and the books verify."""
    from beyondbank.ledger import verify
    from beyondbank.ledger.models import LedgerTransaction
    from beyondbank.payments.models import DepositAccount, Payment
    from beyondbank.settlement.models import PayoutRun, PeriodStatus, SettlementPeriod

    session = demo_uow.session
    kinds = dict(
        session.execute(
            select(LedgerTransaction.kind, func.count()).group_by(LedgerTransaction.kind)
        ).all()
    )
    assert kinds["deposit"] == session.scalar(select(func.count()).select_from(DepositAccount))
    assert kinds["sale"] >= 30
    assert kinds["voucher"] >= 20
    assert kinds["settlement"] >= 1
    assert session.scalar(
        select(func.count()).select_from(Payment).where(Payment.status == "authorised")
    ), "recent orders wait for dispatch with a hold on the customer's account"
    closed = session.scalars(
        select(SettlementPeriod).where(SettlementPeriod.status == PeriodStatus.CLOSED)
    ).all()
    assert closed
    assert all(p.end_at <= T0 for p in closed)
    assert session.scalar(select(func.count()).select_from(PayoutRun)) == 1
    report = verify.run(session)
    assert report.ok, [v.message for c in report.checks for v in c.violations]


def test_last_weeks_card_feed_is_run_with_descriptors_left_to_review(
    demo_uow: UnitOfWork, demo_database: Engine
) -> None:
    """The demo's card-linked week: one run over a generated feed of the last seven days, every
    row accounted for, rewards posted to the ledger, noisy descriptors waiting for a person."""
    from beyondbank.cards.models import (
        CardReward,
        CardRun,
        DescriptorReview,
        ReviewStatus,
        RunStatus,
    )
    from beyondbank.demo.cards import FEED_TRANSACTIONS

    session = demo_uow.session
    run = session.scalars(select(CardRun)).one()
    assert run.status is RunStatus.DONE
    assert run.rows_read == FEED_TRANSACTIONS
    assert run.rows_read == run.accepted + run.quarantined + run.duplicates
    assert run.quarantined > 0  # the generator breaks a few rows on purpose
    assert run.rewards > 100
    assert run.clawbacks > 0
    assert run.posted == run.rewards + run.clawbacks
    midnight = T0.replace(hour=0, minute=0)  # the feed covers the seven days before today
    times = session.scalars(select(CardReward.txn_time)).all()
    assert all(midnight - timedelta(days=7) <= t.replace(tzinfo=UTC) < midnight for t in times)
    waiting = session.scalar(
        select(func.count())
        .select_from(DescriptorReview)
        .where(DescriptorReview.status == ReviewStatus.OPEN)
    )
    assert waiting >= 3
    # Cash and points benefits claimed with a voucher are earned with a linked card as well.
    cash = ("percent_off", "amount_off", "spend_threshold", "points_multiplier")
    for benefit in session.scalars(select(Benefit)):
        if benefit.kind.value in cash and Channel.VOUCHER.value in benefit.channels:
            assert Channel.CARD_LINKED.value in benefit.channels, benefit.title
    directory = Path(str(demo_database.url.database)).parent
    assert (directory / "cards" / f"{run.public_id}-rewards.parquet").exists()


def test_the_partner_shop_has_a_catalog_and_weeks_of_orders(demo_uow: UnitOfWork) -> None:
    """The shop's catalog from the shipped excerpt, orders in every stage of their life,
    commission accrued on completed ones, a closed and an open group buy, tickets (one past its
    response target) and survey answers."""
    from beyondbank.commerce.models import (
        CampaignStatus,
        GroupBuy,
        NpsResponse,
        Order,
        Partner,
        PartnerKind,
        Product,
        ProtectionPolicy,
        SupportTicket,
    )
    from beyondbank.ledger.models import LedgerTransaction

    session = demo_uow.session
    partner = session.scalars(
        select(Partner.public_id).where(Partner.kind == PartnerKind.RETAILER)
    ).one()
    assert session.scalar(select(func.count()).select_from(Product)) == 300
    statuses = dict(
        session.execute(select(Order.status, func.count()).group_by(Order.status)).all()
    )
    assert {"completed", "delivered", "paid"} <= {str(s) for s in statuses}
    commissions = session.scalar(
        select(func.count())
        .select_from(LedgerTransaction)
        .where(
            LedgerTransaction.kind == "commission",
            LedgerTransaction.counterparty_ref == partner,
        )
    )
    assert commissions == statuses.get("completed")
    # The insurer underwrites the protection sold; completed orders passed their premiums on.
    insurer = session.scalars(select(Partner).where(Partner.kind == PartnerKind.INSURER)).one()
    policies = session.scalars(select(ProtectionPolicy)).all()
    assert policies
    assert {p.insurer_id for p in policies} == {insurer.id}
    assert any(p.passed_at is not None and p.commission_minor for p in policies)
    campaigns = {c.status: c for c in session.scalars(select(GroupBuy))}
    assert CampaignStatus.SUCCEEDED in campaigns
    assert campaigns[CampaignStatus.SUCCEEDED].final_unit_minor is not None
    assert campaigns[CampaignStatus.OPEN].units_joined > 0
    tickets = session.scalars(select(SupportTicket)).all()
    assert any(t.first_responded_at is None and t.first_response_due_at < T0 for t in tickets)
    assert session.scalar(select(func.count()).select_from(NpsResponse))
