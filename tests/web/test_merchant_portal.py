"""The merchant portal's pages: who may open each (the admin everything, counter staff what their
role holds, nobody else), benefits created and edited in money and percent with the
price-integrity rule explained when it refuses, redemptions filtered by days and benefit a page
at a time, card-linked rewards, settlement statements with their downloads (another merchant's
is a 404), reviews with their chart, and the nav and manager's card every page shares."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance import merchants as merchant_cases
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.cards.models import CardReward, CardRun, RunStatus
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.uow import UnitOfWork
from beyondbank.settlement import periods
from beyondbank.settlement.models import SettlementPeriod
from beyondbank.web.merchant import activity
from tests import factories as f
from tests.benefits import factories as bf
from tests.settlement import factories as sf
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of

# (page, may the counter staff open it); the merchant's admin opens every one.
PORTAL_PAGES: list[tuple[str, bool]] = [
    ("/merchant", True),
    ("/merchant/redeem", True),
    ("/merchant/benefits", True),
    ("/merchant/benefits/new", False),
    ("/merchant/benefits/{benefit}/edit", False),
    ("/merchant/redemptions", True),
    ("/merchant/rewards", False),
    ("/merchant/statements", False),
    ("/merchant/reviews", True),
]


def _draft(uow: UnitOfWork, world: World, **over: Any) -> Benefit:
    return bf.make_benefit(
        uow, world.holder, **{"status": BenefitStatus.DRAFT, "title": "Early bird", **over}
    )


def _path(template: str, draft: Benefit) -> str:
    return template.format(benefit=draft.public_id)


# -- who may open what ------------------------------------------------------------------------


def test_the_admin_opens_every_page_and_the_counter_staff_their_own(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    draft = _draft(uow, world)
    sign_in(client, world.owner)
    for template, _staff in PORTAL_PAGES:
        response = client.get(_path(template, draft), follow_redirects=False)
        assert response.status_code == 200, (template, response.text[:500])
    client.cookies.clear()
    sign_in(client, world.counter)
    for template, staff in PORTAL_PAGES:
        response = client.get(_path(template, draft), follow_redirects=False)
        assert response.status_code == (200 if staff else 403), template
    # The nav offers only what the role may open, and marks where the staff are.
    page = client.get("/merchant/redemptions").text
    assert '<a href="/merchant/redemptions" aria-current="page">' in page
    assert 'href="/merchant/redeem"' in page
    for refused in ("/merchant/statements", "/merchant/rewards"):
        assert f'href="{refused}"' not in page
    # ... nor post to the admin's forms.
    refused = client.post(
        "/merchant/benefits/new", data={"title": "Sneaky", "csrf_token": csrf_from(page)}
    )
    assert refused.status_code == 403


@pytest.mark.parametrize("who", ["anonymous", "bank_admin", "other_merchant"])
def test_everyone_else_is_kept_out(
    client: TestClient, world: World, uow: UnitOfWork, who: str
) -> None:
    draft = _draft(uow, world)
    if who == "bank_admin":
        sign_in(client, world.admin)
    elif who == "other_merchant":
        other = f.make_merchant(uow, trading_name="Elsewhere")
        sign_in(client, f.make_user(uow, Role.MERCHANT_ADMIN, merchant=other))
    for template, _staff in PORTAL_PAGES:
        path = _path(template, draft)
        response = client.get(path, follow_redirects=False)
        if who == "anonymous":
            assert response.status_code == 303, template
            assert response.headers["location"].startswith("/login?next=")
        elif who == "bank_admin":
            assert response.status_code == 403, template
        elif "{benefit}" in template:
            assert response.status_code == 404, template  # another merchant's benefit
        else:
            assert response.status_code == 200, template
    if who == "other_merchant":
        # ... nor change another merchant's benefit by posting to its forms.
        token = csrf_from(client.get("/merchant").text)
        for action in ("submit", "edit"):
            posted = client.post(
                f"/merchant/benefits/{draft.public_id}/{action}",
                data={**GOOD, "csrf_token": token},
                follow_redirects=False,
            )
            assert posted.status_code == 404, action
        uow.session.expire_all()
        assert uow.session.get_one(Benefit, draft.id).status == BenefitStatus.DRAFT


# -- home --------------------------------------------------------------------------------------


def test_the_home_page_has_the_managers_card_and_the_nav(client: TestClient, world: World) -> None:
    sign_in(client, world.owner)
    page = client.get("/merchant").text
    assert '<a href="/merchant" aria-current="page">' in page
    assert '<link rel="stylesheet" href="/static/merchant.css">' in page
    text = text_of(page)
    assert "My relationship manager Raj Manager raj@bank.test" in text
    assert '<a href="mailto:raj@bank.test">' in page
    assert "full merchant portal is on its way" not in text
    assert 'style="' not in page
    assert "<script>" not in page


# -- benefits ----------------------------------------------------------------------------------

GOOD = {
    "title": "20% off your shop",
    "kind": "percent_off",
    "channels": ["voucher"],
    "valid_from": "2026-11-23",
    "valid_to": "2026-12-31",
    "weekdays": ["1", "2", "3", "4", "5"],
    "hour_start": "9",
    "hour_end": "17",
    "percent": "20",
    "max_reward": "10.00",
    "member_limit": "1",
    "limit_period": "day",
    "budget": "500",
    "regular_price": "10.00",
    "public_discount": "10",
}


def _benefit(uow: UnitOfWork, title: str) -> Benefit | None:
    uow.session.expire_all()
    return uow.session.scalars(select(Benefit).where(Benefit.title == title)).one_or_none()


def test_the_benefit_list_shows_status_dates_and_budget_used(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    live = bf.make_benefit(
        uow, world.holder, title="Lunch deal", budget_minor=50_000, budget_remaining_minor=42_500
    )
    rejected = _draft(uow, world, status=BenefitStatus.REJECTED, decision_reason="Too vague")
    sign_in(client, world.owner)
    page = client.get("/merchant/benefits").text
    text = text_of(page)
    assert "Lunch deal" in text
    assert "active" in text
    assert "£75.00 of £500.00" in text
    assert "1 Nov 2026 – 31 Dec 2026" in text
    assert "20% off dinner voucher, card-linked 20% off, up to £10.00 awaiting the bank's" in text
    assert "Why: Too vague" in text
    assert f'href="/merchant/benefits/{rejected.public_id}/edit"' in page
    assert f'href="/merchant/benefits/{live.public_id}/edit"' not in page


def test_creating_a_benefit_in_money_and_percent_and_sending_it(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.owner)
    saved = submit(client, "/merchant/benefits/new", "/merchant/benefits/new", GOOD)
    assert saved.status_code == 303, saved.text
    benefit = _benefit(uow, "20% off your shop")
    assert benefit is not None
    assert benefit.status == BenefitStatus.DRAFT
    assert benefit.merchant_id == world.holder.id
    assert (benefit.percent_bps, benefit.max_reward_minor, benefit.budget_minor) == (
        2000,
        1000,
        50_000,
    )
    assert (benefit.regular_price_minor, benefit.public_discount_bps) == (1000, 1000)
    assert benefit.weekdays == [1, 2, 3, 4, 5]
    assert "20% off your shop is saved as a draft." in text_of(
        client.get("/merchant/benefits").text
    )

    sent = submit(
        client,
        "/merchant/benefits/new",
        "/merchant/benefits/new",
        {**GOOD, "title": "Second deal", "then": "submit"},
    )
    assert sent.status_code == 303, sent.text
    second = _benefit(uow, "Second deal")
    assert second is not None
    assert second.status == BenefitStatus.SUBMITTED


def test_the_price_integrity_rule_is_explained_beside_the_fields(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.owner)
    same = {**GOOD, "title": "Ten off", "percent": "10"}
    refused = submit(client, "/merchant/benefits/new", "/merchant/benefits/new", same)
    assert refused.status_code == 422
    reason = field_error(refused.text, "benefit-public-discount")
    assert reason is not None
    assert reason.startswith(
        "Members would pay £9.00 on £10.00, the same as everyone (everyone gets 10% off)."
    )
    assert "strictly better than what the merchant offers the public" in reason
    assert field_error(refused.text, "benefit-percent") == (
        "With this reward members would not pay less than everyone else: "
        "see what everyone else pays, below."
    )
    text = text_of(refused.text)
    assert (
        "Everyone else pays £9.00 for these goods. With this benefit members would pay £9.00."
        in (text)
    )
    # Everything typed is kept.
    assert 'name="percent" type="text" value="10"' in refused.text
    assert 'name="title" type="text" value="Ten off"' in refused.text
    assert 'value="3" checked' in refused.text
    assert 'value="6" checked' not in refused.text
    assert _benefit(uow, "Ten off") is None
    # A field that is not money is said beside it, the rest kept.
    bad = submit(
        client,
        "/merchant/benefits/new",
        "/merchant/benefits/new",
        {**GOOD, "title": "Typo", "budget": "lots", "weekdays": []},
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "benefit-budget") == "Write an amount such as 12.50."
    assert field_error(bad.text, "benefit-weekdays") == "Tick at least one day."
    assert _benefit(uow, "Typo") is None
    # A gift everyone can have is no member benefit: said beside the question it answers.
    gift = {
        **{k: v for k, v in GOOD.items() if k not in {"percent", "max_reward", "budget"}},
        "title": "Free coffee",
        "kind": "gift",
        "offer_details": "A coffee with any cake",
        "regular_price": "",
        "public_discount": "",
        "publicly_available": "yes",
    }
    everyone = submit(client, "/merchant/benefits/new", "/merchant/benefits/new", gift)
    assert everyone.status_code == 422
    assert (field_error(everyone.text, "benefit-publicly-available") or "").startswith(
        "Everyone can already get this gift without being a member, so it is no member benefit."
    )
    assert 'value="yes" checked' in everyone.text
    gift["publicly_available"] = "no"
    fine = submit(client, "/merchant/benefits/new", "/merchant/benefits/new", gift)
    assert fine.status_code == 303, fine.text
    coffee = _benefit(uow, "Free coffee")
    assert coffee is not None
    assert (coffee.kind.value, coffee.publicly_available, coffee.offer_details) == (
        "gift",
        False,
        "A coffee with any cake",
    )


def test_editing_a_draft_and_refusing_to_edit_a_live_benefit(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    draft = _draft(uow, world, valid_from=date(2026, 11, 23))
    sign_in(client, world.owner)
    path = f"/merchant/benefits/{draft.public_id}/edit"
    page = client.get(path).text
    # Stored minor units and basis points read as money and percent.
    assert 'name="percent" type="text" value="20"' in page
    assert 'name="max_reward" type="text" value="10.00"' in page
    assert 'name="regular_price" type="text" value="10.00"' in page
    form = {**GOOD, "title": "Early bird special", "percent": "25", "budget": ""}
    saved = submit(client, path, path, form)
    assert saved.status_code == 303, saved.text
    uow.session.expire_all()
    edited = uow.session.get_one(Benefit, draft.id)
    assert (edited.title, edited.percent_bps, edited.budget_minor) == (
        "Early bird special",
        2500,
        None,
    )
    # Sent for approval from the list.
    sent = submit(client, "/merchant/benefits", f"/merchant/benefits/{draft.public_id}/submit", {})
    assert sent.status_code == 303
    uow.session.expire_all()
    assert uow.session.get_one(Benefit, draft.id).status == BenefitStatus.SUBMITTED
    # A submitted benefit is no longer edited here: the list says why.
    away = client.get(path, follow_redirects=False)
    assert away.status_code == 303
    text = text_of(client.get("/merchant/benefits").text)
    assert "Early bird special is submitted: only a draft or a rejected benefit can be edited." in (
        text
    )


# -- redemptions and rewards ------------------------------------------------------------------


def test_redemptions_filter_by_days_and_benefit_a_page_at_a_time(
    client: TestClient, world: World, uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    lunch = bf.make_benefit(uow, world.holder, title="Lunch deal")
    dinner = bf.make_benefit(uow, world.holder, title="Dinner deal")
    member = f.make_member(uow)
    times = [
        (lunch, datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        (dinner, datetime(2026, 11, 20, 23, 30, tzinfo=UTC)),  # 23:30 in London: the 20th
        (lunch, datetime(2026, 11, 21, 12, 0, tzinfo=UTC)),
        (lunch, datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
    ]
    for step, (benefit, at) in enumerate(times, start=1):
        made = bf.make_redemption(uow, benefit, member, code_step=step, reward_minor=100 * step)
        made.redeemed_at = at
    uow.session.flush()
    other = f.make_merchant(uow, trading_name="Elsewhere")
    bf.make_redemption(uow, bf.make_benefit(uow, other, title="Not mine"), member, code_step=9)
    sign_in(client, world.counter)

    def rewards(query: str) -> list[str]:
        page = client.get(f"/merchant/redemptions?{query}")
        assert page.status_code == 200, page.text
        assert "Not mine" not in page.text
        return re.findall(r"<td>(£\d\.\d\d)</td>\s*<td>£\d", page.text)

    assert rewards("") == ["£1.00", "£2.00", "£3.00", "£4.00"]
    assert rewards("start=2026-11-20&end=2026-11-20") == ["£1.00", "£2.00"]
    assert rewards("start=2026-11-21") == ["£3.00", "£4.00"]
    assert rewards(f"benefit={lunch.public_id}&end=2026-11-21") == ["£1.00", "£3.00"]
    page = client.get(f"/merchant/redemptions?benefit={dinner.public_id}").text
    assert f'<option value="{dinner.public_id}" selected>' in page

    monkeypatch.setattr(activity, "PAGE_SIZE", 2)
    first = client.get(f"/merchant/redemptions?benefit={lunch.public_id}").text
    link = re.search(r'<a href="\?([^"]*cursor=[^"]+)">Next page', first)
    assert link, "no next page link"
    assert f"benefit={lunch.public_id}" in link.group(1)
    assert rewards(link.group(1).replace("&amp;", "&")) == ["£4.00"]

    bad = client.get("/merchant/redemptions?start=yesterday&end=2026-11-01")
    assert bad.status_code == 422
    assert field_error(bad.text, "filter-start") == "Give a date such as 2026-11-22."
    assert 'value="yesterday"' in bad.text
    backwards = client.get("/merchant/redemptions?start=2026-11-21&end=2026-11-20")
    assert field_error(backwards.text, "filter-end") == "The last day comes before the first."


def test_card_linked_rewards_and_clawbacks_at_this_merchant_only(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    benefit = bf.make_benefit(uow, world.holder, title="Card deal")
    member = f.make_member(uow)
    other = f.make_merchant(uow, trading_name="Elsewhere")
    now = uow.clock.now()
    run = CardRun(
        public_id="run_merchantpage",
        source="feed.csv",
        status=RunStatus.DONE,
        started_at=now,
        details={},
    )
    uow.session.add(run)
    uow.session.flush()
    rows = [
        ("reward", "t1", None, world.holder.id, 5000, 1000),
        ("clawback", "t2", "t1", world.holder.id, -2000, -400),
        ("reward", "t3", None, other.id, 9900, 990),
    ]
    for kind, txn, original, merchant_id, amount, reward in rows:
        uow.session.add(
            CardReward(
                run_id=run.id,
                kind=kind,
                txn_id=txn,
                original_txn_id=original,
                txn_time=now,
                member_id=member.id,
                merchant_id=merchant_id,
                currency="GBP",
                purchase_amount_minor=abs(amount),
                txn_amount_minor=amount,
                benefit_id=benefit.id if merchant_id == world.holder.id else None,
                amount_minor=reward,
                merchant_funded_minor=reward,
                bank_funded_minor=0,
                commission_minor=0,
                points=0,
            )
        )
    uow.session.flush()
    sign_in(client, world.owner)
    text = text_of(client.get("/merchant/rewards").text)
    assert "clawback Card deal" in text
    assert "reward Card deal" in text
    assert "£10.00" in text
    assert "-£4.00" in text
    assert "£9.90" not in text
    only = text_of(client.get("/merchant/rewards?kind=clawback").text)
    assert "-£4.00" in only
    assert "£10.00" not in only
    assert client.get("/merchant/rewards?kind=everything").status_code == 422


# -- statements --------------------------------------------------------------------------------


def _september(uow: UnitOfWork, party: str) -> SettlementPeriod:
    contract = sf.make_contract(uow, party)
    sf.sale(uow, contract, 60_000, at=datetime(2026, 9, 5, tzinfo=UTC), member="m1")
    opened = sf.open_periods(uow, contract)
    periods.close(uow, SYSTEM, opened[0].public_id)
    return opened[0]


def test_statements_with_csv_and_pdf_and_another_merchants_is_not_found(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    september = _september(uow, world.holder.public_id)
    other = f.make_merchant(uow, trading_name="Elsewhere")
    theirs = _september(uow, other.public_id)
    sign_in(client, world.owner)
    page = client.get("/merchant/statements")
    text = text_of(page.text)
    assert "1 Sept 2026 – 30 Sept 2026 closed The bank owes you £570.00" in text
    assert f'href="/merchant/statements/{september.public_id}.csv"' in page.text
    assert f'href="/merchant/statements/{september.public_id}.pdf"' in page.text
    assert theirs.public_id not in page.text
    assert "when the period closes" in text  # October and November are still open

    csv_file = client.get(f"/merchant/statements/{september.public_id}.csv")
    assert csv_file.status_code == 200
    assert csv_file.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_file.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(csv_file.text)))
    net = next(r for r in rows if (r["section"], r["item"]) == ("total", "net"))
    assert net["amount_minor"] == "57000"
    pdf = client.get(f"/merchant/statements/{september.public_id}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")

    for suffix in ("csv", "pdf"):
        assert client.get(f"/merchant/statements/{theirs.public_id}.{suffix}").status_code == 404
    client.cookies.clear()
    sign_in(client, world.counter)
    assert client.get(f"/merchant/statements/{september.public_id}.csv").status_code == 403


# -- reviews -----------------------------------------------------------------------------------


def test_reviews_show_the_figures_and_a_chart_of_the_history(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.counter)
    empty = text_of(client.get("/merchant/reviews").text)
    assert "The bank has not recorded your reviews yet" in empty
    staff = f.principal(world.rm)
    merchant_cases.record_reviews(
        uow, staff, world.holder, score=Decimal("4.1"), count=80, source="Dianping, October"
    )
    page = client.get("/merchant/reviews").text
    assert "<svg" not in page  # one recording: a figure, not a trend
    merchant_cases.record_reviews(
        uow, staff, world.holder, score=Decimal("4.6"), count=120, source="Dianping, November"
    )
    page = client.get("/merchant/reviews").text
    text = text_of(page)
    assert "4.6 / 5 Review score 120 Reviews counted" in text
    assert '<table class="data chart" id="review-trend">' in page
    assert page.count('<svg class="bar"') == 2
    assert text.index("Dianping, November") < text.index("Dianping, October")
    assert "4.10 80 Dianping, October" in text
