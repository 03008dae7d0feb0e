"""Benefit pages: the approval queue first, filters, a benefit's terms with its price-integrity
verdict, and the bank admin's approval (setting the bank's terms) or rejection."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from beyondbank.alliance.models import MerchantStatus
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import BenefitKind, BenefitStatus
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of


def _titles(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/console/benefits/[^"]+">([^<]+)</a>', html)


def _status(uow: UnitOfWork, world: World, public_id: str) -> BenefitStatus:
    uow.session.expire_all()
    return benefits.get_benefit(uow, f.principal(world.admin), public_id).status


def test_the_approval_queue_comes_first(client: TestClient, world: World, uow: UnitOfWork) -> None:
    bf.make_benefit(
        uow,
        world.holder,
        title="Free coffee",
        kind=BenefitKind.GIFT,
        percent_bps=None,
        max_reward_minor=None,
        regular_price_minor=None,
        public_discount_bps=None,
        offer_details="A coffee with any meal",
    )
    sign_in(client, world.analyst)
    page = client.get("/console/benefits")
    assert page.status_code == 200
    queue, rest = page.text.split("All benefits", 1)
    assert _titles(queue) == ["20% off dinner"]
    assert _titles(rest) == ["20% off dinner", "Free coffee"]
    assert "20% off, up to £10.00" in text_of(queue)
    assert "£500.00 of £500.00" in text_of(queue)
    # Filters: status, merchant, kind.
    assert _titles(client.get("/console/benefits?status=active").text) == ["Free coffee"]
    assert _titles(client.get("/console/benefits?kind=gift").text) == ["Free coffee"]
    by_merchant = client.get(f"/console/benefits?merchant={world.holder.public_id}&status=").text
    assert "Free coffee" in by_merchant
    assert f'<option value="{world.holder.public_id}" selected>' in by_merchant


def test_a_benefit_page_shows_terms_limits_and_the_price_verdict(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.rm)
    text = text_of(client.get(f"/console/benefits/{world.benefit.public_id}").text)
    assert "Price integrity: ✓ better than the public gets" in text
    assert "Members pay £8.00 on £10.00; everyone else pays £9.00." in text
    assert "Public discount 10%" in text
    assert "Days every day" in text
    assert "Hours all day" in text
    assert "Budget left £500.00 of £500.00" in text
    assert "Merchant funds 100% of each reward" in text
    assert "Approve" not in text  # only the bank's program managers approve


def test_a_benefit_that_is_no_better_than_the_public_offer_says_why(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    same = bf.make_benefit(
        uow, world.holder, title="10% off", percent_bps=1000, status=BenefitStatus.SUBMITTED
    )
    sign_in(client, world.admin)
    text = text_of(client.get(f"/console/benefits/{same.public_id}").text)
    assert "not better than the public gets" in text
    assert "Members would pay £9.00 on £10.00, the same as everyone" in text
    response = submit(
        client,
        f"/console/benefits/{same.public_id}",
        f"/console/benefits/{same.public_id}/approve",
        {},
    )
    assert response.status_code == 422
    assert "A member benefit must be strictly better" in response.text
    assert _status(uow, world, same.public_id) == BenefitStatus.SUBMITTED


def test_bank_admin_approves_a_benefit_with_the_banks_terms(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    path = f"/console/benefits/{world.benefit.public_id}"
    response = submit(
        client,
        path,
        f"{path}/approve",
        {"merchant_share_bps": "8000", "commission_bps": "150", "note": "Good deal"},
    )
    assert response.status_code == 303, response.text
    text = text_of(client.get(path).text)
    assert "20% off dinner is approved and live for members." in text
    assert "Merchant funds 80% of each reward" in text
    assert "Bank's commission 1.5% of the purchase" in text
    assert "Decision note Good deal" in text
    uow.session.expire_all()
    benefit = benefits.get_benefit(uow, f.principal(world.admin), world.benefit.public_id)
    assert (benefit.status, benefit.merchant_share_bps, benefit.commission_bps) == (
        BenefitStatus.ACTIVE,
        8000,
        150,
    )


def test_approval_with_bad_terms_keeps_what_was_typed(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    path = f"/console/benefits/{world.benefit.public_id}"
    response = submit(
        client, path, f"{path}/approve", {"merchant_share_bps": "12000", "commission_bps": "lots"}
    )
    assert response.status_code == 422
    assert "At most 10000." in (field_error(response.text, "approve-merchant-share-bps") or "")
    assert field_error(response.text, "approve-commission-bps") == "A whole number, in digits."
    assert 'value="12000"' in response.text
    assert 'value="lots"' in response.text
    assert _status(uow, world, world.benefit.public_id) == BenefitStatus.SUBMITTED


def test_a_suspended_merchants_benefit_cannot_go_live_and_the_page_says_so(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    world.holder.status = MerchantStatus.SUSPENDED
    uow.session.flush()
    sign_in(client, world.admin)
    path = f"/console/benefits/{world.benefit.public_id}"
    response = submit(client, path, f"{path}/approve", {})
    assert response.status_code == 409
    assert "The merchant is suspended: only an active merchant&#39;s benefit can go live." in (
        response.text
    )
    assert _status(uow, world, world.benefit.public_id) == BenefitStatus.SUBMITTED


def test_rejecting_needs_a_reason_the_merchant_reads(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    path = f"/console/benefits/{world.benefit.public_id}"
    short = submit(client, path, f"{path}/reject", {"reason": "no"})
    assert short.status_code == 422
    assert field_error(short.text, "reject-reason") == "At least 3 characters."
    done = submit(client, path, f"{path}/reject", {"reason": "Dates clash with Christmas"})
    assert done.status_code == 303
    assert _status(uow, world, world.benefit.public_id) == BenefitStatus.REJECTED
    # Deciding again is explained at the top of the page, not as raw JSON.
    page = client.get(path)
    again = client.post(f"{path}/approve", data={"csrf_token": csrf_from(page.text)})
    assert again.status_code == 409
    assert "text/html" in again.headers["content-type"]
    assert "Cannot approve a benefit that is rejected." in text_of(again.text)


def test_only_bank_admins_approve(client: TestClient, world: World) -> None:
    sign_in(client, world.rm)
    path = f"/console/benefits/{world.benefit.public_id}"
    page = client.get(path)
    refused = client.post(f"{path}/approve", data={"csrf_token": csrf_from(page.text)})
    assert refused.status_code == 403
