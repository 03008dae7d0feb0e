"""The console's newer pages: the programme month by month on the overview, every circle on a plot
with the coverage grid, settlement periods and statements, users and roles, the filtered audit
trail; who may open each, and another organisation's objects out of reach."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance.models import MemberStatus
from beyondbank.cards import frames
from beyondbank.cards.models import CardReward, CardRun, RunStatus
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.ids import new_public_id, new_ulid
from beyondbank.core.models import AuditEvent
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.chart import Kind
from beyondbank.settlement import payouts, periods
from beyondbank.settlement.models import SettlementPeriod
from beyondbank.web.console.overview import month_starts
from tests import factories as f
from tests.benefits import factories as bf
from tests.settlement import factories as sf
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # the tests' clock (tests/conftest.py T0)


def _series(html: str, series_id: str) -> dict[str, str]:
    """A chart's screen-reader table: month → value as shown."""
    table = re.search(
        rf'<table class="data series-table" id="{series_id}-table">(.*?)</table>', html, re.S
    )
    assert table, f"no table for {series_id}"
    rows = re.findall(r'<th scope="row">([^<]+)</th>\s*<td>([^<]+)</td>', table.group(1))
    return {month: value.strip() for month, value in rows}


# -- overview charts -------------------------------------------------------------------------------


def test_month_bounds_are_the_bank_calendar_months() -> None:
    bounds = month_starts(NOW, "Europe/London", 12)
    assert len(bounds) == 13
    assert bounds[0].date() == date(2025, 12, 1)
    assert bounds[-2].date() == date(2026, 11, 1)
    assert bounds[-1].date() == date(2026, 12, 1)
    # London summer time: 1 June starts at 23:00 UTC the day before.
    june = bounds[6]
    assert june.astimezone(UTC) == datetime(2026, 5, 31, 23, 0, tzinfo=UTC)


def test_overview_charts_count_each_month(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    september = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)
    f.make_member(uow, enrolled_at=september)
    left = f.make_member(uow, enrolled_at=september)
    left.status = MemberStatus.LEFT
    left.left_at = datetime(2026, 10, 20, tzinfo=UTC)
    member = f.make_member(uow)  # this month
    live = bf.make_benefit(uow, world.holder, title="Live")
    bf.make_redemption(uow, live, member)
    bf.make_redemption(uow, live, member, code_step=1)
    # Cashback: 2.00 granted in October, 0.50 of it clawed back in November.
    run = CardRun(
        public_id=new_public_id("run"),
        source="feed.csv",
        status=RunStatus.DONE,
        started_at=NOW,
        details={},
    )
    uow.session.add(run)
    uow.session.flush()
    for kind, at, amount in (
        (frames.REWARD, datetime(2026, 10, 5, tzinfo=UTC), 200),
        (frames.CLAWBACK, datetime(2026, 11, 2, tzinfo=UTC), 50),
    ):
        uow.session.add(
            CardReward(
                run_id=run.id,
                kind=kind,
                txn_id=f"t-{new_ulid()}",
                txn_time=at,
                member_id=member.id,
                merchant_id=world.holder.id,
                currency="GBP",
                purchase_amount_minor=1_000,
                txn_amount_minor=1_000,
                amount_minor=amount,
                merchant_funded_minor=amount,
                bank_funded_minor=0,
                commission_minor=0,
                points=0,
            )
        )
    # Commission revenue: 12.34 in November.
    ledger.post(
        uow,
        ledger.Draft(
            key="test:commission:1",
            kind=Kind.COMMISSION.value,
            legs=(
                ledger.Leg.debit(chart.bank_cash(uow, "GBP"), Money(1_234, "GBP")),
                ledger.Leg.credit(chart.commission_revenue(uow, "GBP"), Money(1_234, "GBP")),
            ),
            effective_at=datetime(2026, 11, 3, tzinfo=UTC),
        ),
        actor=SYSTEM,
    )
    uow.commit()

    sign_in(client, world.analyst)  # aggregates only: analysts see every chart
    page = client.get("/console")
    assert page.status_code == 200
    html = page.text
    members = _series(html, "members")
    assert next(iter(members)) == "December 2025"
    assert list(members)[-1] == "November 2026"
    assert (members["August 2026"], members["September 2026"]) == ("0", "2")
    assert (members["October 2026"], members["November 2026"]) == ("1", "2")
    assert _series(html, "redemptions")["November 2026"] == "2"
    assert _series(html, "redemptions")["October 2026"] == "0"
    assert _series(html, "active-merchants")["November 2026"] == "1"
    rewards = _series(html, "rewards")
    assert (rewards["October 2026"], rewards["November 2026"]) == ("£2.00", "-£0.50")
    assert _series(html, "commissions")["November 2026"] == "£12.34"
    # Drawn on the server: one column per month in each chart, no script.
    assert html.count('<svg class="columns-chart"') == 5
    # Scripts only from files on this host (the CSP refuses inline ones).
    assert not re.search(r"<script(?![^>]*\ssrc=\"/static/)", html)


def test_an_empty_chart_says_so(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    text = text_of(client.get("/console").text)
    assert (
        "Redemptions Vouchers redeemed at the counter and not reversed. Nothing in these 12 months yet."
        in text
    )


# -- circles plot and coverage grid ------------------------------------------------------------------


def test_circles_plot_and_coverage_grid(client: TestClient, world: World, uow: UnitOfWork) -> None:
    far = f.make_circle(
        uow, name="Greenwich", code="greenwich", center=(51.4826, -0.0077), radius_m=1500
    )
    hotel = f.make_merchant(
        uow, sub_industry="hotel", trading_name="Wharf Hotel", at=(51.5010, -0.0190)
    )
    f.make_seat(uow, world.circle, hotel)
    uow.commit()
    sign_in(client, world.analyst)
    html = client.get("/console/circles").text
    # Both circles on the plot, each a link labelled with its name.
    plot = html.split('<svg class="circle-plot"', 1)[1].split("</svg>", 1)[0]
    for circle in (world.circle, far):
        assert f'href="/console/circles/{circle.public_id}"' in plot
        assert f">{circle.name}</text>" in plot
    assert plot.count('class="area"') == 2
    # The seated merchants' locations as dots (the diner and the hotel; the applicant is not seated).
    assert plot.count("<title>") == 2
    assert "Wharf Hotel · Main shop" in plot
    # The radius is to scale: Greenwich (1.5 km) is drawn half as wide as Canary Wharf (3 km).
    # (The circles are drawn by name: Canary Wharf, then Greenwich.)
    canary, greenwich = re.findall(r'<circle class="area" cx="[^"]+" cy="[^"]+" r="([\d.]+)"', plot)
    assert float(canary) == pytest.approx(2 * float(greenwich), rel=0.02)
    # The coverage grid: dining (the diner) and lodging (the hotel) held; the rest are gaps.
    grid = text_of(html.split('class="data coverage-grid"', 1)[1].split("</table>", 1)[0])
    assert "Canary Wharf 1 1 ∅ gap ∅ gap ∅ gap ∅ gap 4" in grid
    assert "Greenwich ∅ gap ∅ gap ∅ gap ∅ gap ∅ gap ∅ gap 6" in grid
    assert html.count('<td class="gap">') == 10


# -- settlement ------------------------------------------------------------------------------------


def _settled(uow: UnitOfWork, world: World) -> SettlementPeriod:
    """The diner's September settled: a 100.00 sale at a 10% share, closed and paid out."""
    contract = sf.make_contract(uow, world.holder.public_id, base_share_bps=1_000)
    september = sf.open_periods(uow, contract)[0]
    sf.sale(uow, contract, 10_000, at=datetime(2026, 9, 10, 12, tzinfo=UTC))
    periods.close(uow, SYSTEM, september.public_id)
    debtor = payouts.check_debtor("Thames & Harbour Bank", "GB18THHB40051512345678", "THHBGB2L")
    payouts.create_run(uow, SYSTEM, currency="GBP", debtor=debtor)
    return september


def test_settlement_periods_statement_and_downloads(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    september = _settled(uow, world)
    sign_in(client, world.auditor)
    text = text_of(client.get("/console/settlement").text)
    assert "Dockside Diner" in text
    assert "1 Sept 2026 to 30 Sept 2026 closed £90.00 the bank pays" in text
    assert "open" in text  # October and November are still open
    assert "£90.00 owed to merchants and partners" in text
    assert "Payout runs" in text
    assert "pain.001" in text
    only_closed = text_of(client.get("/console/settlement?status=closed").text)
    assert "30 Sept 2026" in only_closed
    assert "31 Oct 2026" not in only_closed

    page = client.get(f"/console/settlement/{september.public_id}")
    assert page.status_code == 200
    detail = text_of(page.text)
    assert "Sales £100.00" in detail
    assert "Commission £10.00" in detail
    assert "Net £90.00 (the bank pays the party)" in detail
    csv = client.get(f"/console/settlement/{september.public_id}/statement.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    pdf = client.get(f"/console/settlement/{september.public_id}/statement.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    run_link = re.search(
        r'href="(/console/settlement/runs/[^"]+/pain.001)"', page.text
    ) or re.search(
        r'href="(/console/settlement/runs/[^"]+/pain.001)"', client.get("/console/settlement").text
    )
    assert run_link
    xml = client.get(run_link.group(1))
    assert xml.status_code == 200
    assert b"pain.001.001.09" in xml.content


def test_an_open_period_has_no_statement_yet(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    contract = sf.make_contract(uow, world.holder.public_id)
    sf.open_periods(uow, contract)
    november = sf.period_on(uow, contract, date(2026, 11, 1))
    uow.commit()
    sign_in(client, world.admin)
    text = text_of(client.get(f"/console/settlement/{november.public_id}").text)
    assert "This period is open: its statement is written once it closes." in text
    assert client.get(f"/console/settlement/{november.public_id}/statement.csv").status_code == 409
    assert client.get("/console/settlement/per_nothing").status_code == 404
    assert client.get("/console/settlement?status=sideways").status_code == 422


# -- users and roles -------------------------------------------------------------------------------


def test_users_list_with_organisations_and_filters(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/console/users")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "owner@diner.test" in text
    assert "Dockside Diner" in text
    assert "ada@bank.test" in text
    merchants_only = text_of(
        client.get("/console/users?role=merchant_staff").text.split("<tbody>", 1)[1]
    )
    assert "till@diner.test" in merchants_only
    assert "ada@bank.test" not in merchants_only
    assert (
        'value="merchant_staff" selected' in client.get("/console/users?role=merchant_staff").text
    )
    assert client.get("/console/users?role=emperor").status_code == 422


def test_creating_a_staff_user(client: TestClient, world: World, uow: UnitOfWork) -> None:
    sign_in(client, world.admin)
    done = submit(
        client,
        "/console/users",
        "/console/users",
        {
            "name": "Nia Analyst",
            "email": "nia@bank.example",
            "role": "analyst",
            "password": "Correct horse battery 9",
        },
    )
    assert done.status_code == 303
    created = uow.session.scalars(select(User).where(User.email == "nia@bank.example")).one()
    assert created.role is Role.ANALYST
    assert created.merchant_id is None
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == created.public_id)
    ).one()
    assert (event.action, event.actor_id) == ("user.created", world.admin.public_id)
    assert "nia@bank.example" in text_of(client.get("/console/users").text)


def test_user_form_errors_beside_the_fields(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    f.make_user(uow, Role.AUDITOR, email="taken@bank.example")
    uow.commit()
    sign_in(client, world.admin)
    refused = submit(
        client,
        "/console/users",
        "/console/users",
        {"name": "Mo", "email": "not-an-email", "role": "merchant_admin", "password": "short"},
    )
    assert refused.status_code == 422
    assert (
        field_error(refused.text, "user-email") == "Give an email address, e.g. name@bank.example."
    )
    assert field_error(refused.text, "user-password") == "Use at least 12 characters."
    assert 'value="Mo"' in refused.text
    assert 'value="not-an-email"' in refused.text
    assert 'value="short"' not in refused.text  # a password is never written back
    taken = submit(
        client,
        "/console/users",
        "/console/users",
        {
            "name": "Ada Again",
            "email": "taken@bank.example",
            "role": "auditor",
            "password": "Correct horse battery 9",
        },
    )
    assert taken.status_code == 409
    assert "exists already" in (field_error(taken.text, "user-email") or "")
    not_staff = submit(
        client,
        "/console/users",
        "/console/users",
        {
            "name": "Mo",
            "email": "mo@shop.example",
            "role": "merchant_admin",
            "password": "Correct horse battery 9",
        },
    )
    assert field_error(not_staff.text, "user-role") == "Choose one of the bank's staff roles."


def test_deactivating_and_reactivating_a_user(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    page = client.get("/console/users")
    token = csrf_from(page.text)
    off = client.post(
        f"/console/users/{world.rm.public_id}/status",
        data={"active": "false", "csrf_token": token},
        follow_redirects=False,
    )
    assert off.status_code == 303
    uow.session.expire_all()
    assert uow.session.get_one(User, world.rm.id).active is False
    assert "raj@bank.test is deactivated" in text_of(client.get("/console/users").text)
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == world.rm.public_id)
    ).all()
    assert "user.updated" in actions
    # Nobody deactivates their own account.
    mine = client.post(
        f"/console/users/{world.admin.public_id}/status",
        data={"active": "false", "csrf_token": token},
        follow_redirects=False,
    )
    assert mine.status_code == 303
    assert "You cannot deactivate your own account." in client.get("/console/users").text
    back = client.post(
        f"/console/users/{world.rm.public_id}/status",
        data={"active": "true", "csrf_token": token},
        follow_redirects=False,
    )
    assert back.status_code == 303
    uow.session.expire_all()
    assert uow.session.get_one(User, world.rm.id).active is True
    # Without the form's token nothing changes.
    assert (
        client.post(
            f"/console/users/{world.rm.public_id}/status", data={"active": "false"}
        ).status_code
        == 403
    )


# -- audit trail -----------------------------------------------------------------------------------


def test_audit_trail_filters_keep_what_was_chosen(
    client: TestClient, world: World, clock: FixedClock
) -> None:
    sign_in(client, world.auditor)
    everything = text_of(client.get("/console/audit").text)
    assert "interaction.logged" in everything
    assert "application.submitted" in everything
    page = client.get(
        "/console/audit?object_type=application&action=&from=2026-11-22&to=2026-11-22"
    )
    assert page.status_code == 200
    text = text_of(page.text)
    assert "application.submitted" in text
    assert "interaction.logged" not in text
    assert '<option value="application" selected>' in page.text
    assert 'value="2026-11-22"' in page.text
    by_actor = text_of(client.get(f"/console/audit?actor_id={world.rm.public_id}").text)
    assert "interaction.logged" in by_actor
    assert "application.submitted" not in by_actor
    yesterday = text_of(client.get("/console/audit?to=2026-11-21").text)
    assert "Nothing recorded for these filters." in yesterday
    bad = client.get("/console/audit?from=22/11/2026&to=2026-11-01")
    assert bad.status_code == 422
    assert field_error(bad.text, "audit-from") == "Give a day as YYYY-MM-DD, e.g. 2026-11-01."
    assert 'value="22/11/2026"' in bad.text
    backwards = client.get("/console/audit?from=2026-11-22&to=2026-11-01")
    assert (
        field_error(backwards.text, "audit-to") == "The last day must come on or after the first."
    )


def test_audit_trail_pages(client: TestClient, world: World, uow: UnitOfWork) -> None:
    for i in range(55):
        uow.session.add(
            AuditEvent(
                occurred_at=NOW + timedelta(seconds=i),
                actor_type="system",
                actor_id="system",
                actor_label="system",
                action="test.touched",
                object_type="thing",
                object_id=f"t{i}",
            )
        )
    uow.commit()
    sign_in(client, world.auditor)
    first = client.get("/console/audit?object_type=thing")
    assert first.text.count("test.touched") == 50
    older = re.search(r'href="\?([^"]*cursor=[^"]+)"', first.text)
    assert older
    assert "object_type=thing" in older.group(1)
    second = client.get("/console/audit?" + older.group(1).replace("&amp;", "&"))
    assert second.text.count("test.touched") == 5
    assert '<option value="thing" selected>' in second.text


# -- who may open the new pages ----------------------------------------------------------------------

STAFF = (Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR, Role.ANALYST)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/console/settlement", {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR}),
        (
            "/console/settlement/{period}",
            {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR},
        ),
        (
            "/console/settlement/{period}/statement.csv",
            {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR},
        ),
        ("/console/users", {Role.BANK_ADMIN}),
        ("/console/audit", {Role.BANK_ADMIN, Role.AUDITOR}),
    ],
)
def test_who_may_open_the_new_pages(
    client: TestClient, world: World, uow: UnitOfWork, path: str, allowed: set[Role]
) -> None:
    september = _settled(uow, world)
    target = path.format(period=september.public_id)
    for user, role in (
        (world.admin, Role.BANK_ADMIN),
        (world.rm, Role.RELATIONSHIP_MANAGER),
        (world.auditor, Role.AUDITOR),
        (world.analyst, Role.ANALYST),
        (world.owner, Role.MERCHANT_ADMIN),
    ):
        client.cookies.clear()
        sign_in(client, user)
        expected = 200 if role in allowed else 403
        assert client.get(target, follow_redirects=False).status_code == expected, (path, role)
    client.cookies.clear()
    anonymous = client.get(target, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")


def test_the_nav_offers_settlement_and_users_to_whom_may_open_them(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get("/console/settlement").text
    assert 'href="/console/users"' in page
    assert '<a href="/console/settlement" aria-current="page">' in page
    client.cookies.clear()
    sign_in(client, world.rm)
    page = client.get("/console").text
    assert 'href="/console/settlement"' in page
    assert 'href="/console/users"' not in page
    client.cookies.clear()
    sign_in(client, world.analyst)
    page = client.get("/console").text
    assert 'href="/console/settlement"' not in page


def test_another_merchants_statement_is_out_of_reach(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    # The console is for the bank's staff: a merchant's admin is refused before any lookup, so no
    # other merchant's period can be told apart from a missing one.
    september = _settled(uow, world)
    other = f.make_merchant(uow, trading_name="Elsewhere")
    admin = f.make_user(uow, Role.MERCHANT_ADMIN, merchant=other, email="boss@elsewhere.test")
    uow.commit()
    sign_in(client, admin)
    for path in (
        f"/console/settlement/{september.public_id}",
        f"/console/settlement/{september.public_id}/statement.pdf",
        "/console/settlement/per_missing",
    ):
        assert client.get(path).status_code == 403, path


def test_an_unknown_user_is_not_found(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    token = csrf_from(client.get("/console/users").text)
    missing = client.post(
        "/console/users/usr_missing/status", data={"active": "false", "csrf_token": token}
    )
    assert missing.status_code == 404


# -- the pipeline and the merchant page ------------------------------------------------------------


def test_the_pipeline_lists_each_requirement_with_its_result(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    from beyondbank.alliance import admission
    from beyondbank.alliance.models import MerchantStatus

    weak = f.make_merchant(
        uow,
        sub_industry="florist",
        status=MerchantStatus.UNDER_REVIEW,
        trading_name="Wilted Flowers",
        review_score=3,
    )
    admission.submit(uow, f.principal(world.admin), weak, world.circle)
    uow.commit()
    sign_in(client, world.rm)
    html = client.get("/console/applications").text
    rows = [text_of(row) for row in re.findall(r'<tr>\s*<th scope="row">(.*?)</tr>', html, re.S)]
    weak_row = next(row for row in rows if row.startswith("Wilted Flowers"))
    assert "1 not met" in weak_row
    assert "passed: A location inside the circle" in weak_row
    assert "passed: The sub-industry's slot is free" in weak_row
    assert (
        "not met: A minimum review score — review score 3.0 is below the circle's minimum 4.0"
        in weak_row
    )
    bakery_row = next(row for row in rows if row.startswith("Wharf Bakery"))
    assert "all met" in bakery_row


def test_merchant_page_shows_price_checks_and_its_audit_trail(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.auditor)
    html = client.get(f"/console/merchants/{world.holder.public_id}").text
    benefits = text_of(html.split('id="benefits-title"', 1)[1].split("</table>", 1)[0])
    assert "Price check" in benefits
    assert "20% off dinner" in benefits
    assert "passed" in benefits
    audits = text_of(html.split('id="audits-title"', 1)[1].split("</section>", 1)[0])
    assert "merchant.manager_assigned" in audits
    assert (
        f'href="/console/audit?object_type=merchant&amp;object_id={world.holder.public_id}"' in html
    )
    client.cookies.clear()
    sign_in(client, world.analyst)  # analysts read no audit trail
    assert (
        'id="audits-title"' not in client.get(f"/console/merchants/{world.holder.public_id}").text
    )


def test_changing_a_users_role_on_the_users_page(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    page = client.get("/console/users")
    # Each user is offered the roles of their kind: a bank role for staff, a merchant's for the till.
    assert f'action="/console/users/{world.analyst.public_id}/role"' in page.text
    assert f'action="/console/users/{world.admin.public_id}/role"' not in page.text  # not mine
    token = csrf_from(page.text)
    changed = client.post(
        f"/console/users/{world.analyst.public_id}/role",
        data={"role": "auditor", "csrf_token": token},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert "analyst@bank.test is now auditor." in text_of(client.get("/console/users").text)
    uow.session.expire_all()
    assert uow.session.get_one(User, world.analyst.id).role == Role.AUDITOR
    # A role of another kind is not offered, and posted anyway it changes nothing.
    refused = client.post(
        f"/console/users/{world.counter.public_id}/role",
        data={"role": "bank_admin", "csrf_token": token},
        follow_redirects=False,
    )
    assert refused.status_code == 303
    assert (
        "Choose one of the roles offered for till@diner.test." in client.get("/console/users").text
    )
    uow.session.expire_all()
    assert uow.session.get_one(User, world.counter.id).role == Role.MERCHANT_STAFF
