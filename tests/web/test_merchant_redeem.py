"""Redeeming at the counter in one step: a photo of the member's QR code (read on the server) or
the typed code, the benefit and the bill; what the member got said in money; a second use of
the same code refused with the service's reason beside the field and nothing written; a double
tap of one form redeems once; photos that are not images, too big, or without a QR code."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import segno
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import func, select

from beyondbank.alliance.models import Member
from beyondbank.benefits.models import Benefit, BenefitKind, LimitPeriod, Redemption
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, text_of

PAGE = "/merchant/redeem"


def qr_png(text: str, scale: int = 8) -> bytes:
    """The member's QR code as a photo the staff's phone would send (a PNG here)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale)
    return buffer.getvalue()


def _key(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the form has no idempotency key"
    return match.group(1)


def post_redeem(
    client: TestClient,
    fields: dict[str, str],
    *,
    photo: tuple[str, bytes, str] | None = None,
    key: str | None = None,
    csrf: str | None = None,
) -> Response:
    """Post the counter's form as the browser does (multipart), with a freshly rendered form's
    CSRF token and idempotency key unless given."""
    if key is None or csrf is None:
        page = client.get(PAGE).text
        key = key or _key(page)
        csrf = csrf or csrf_from(page)
    data: dict[str, Any] = {"csrf_token": csrf, "idempotency_key": key, **fields}
    files = {"photo": photo} if photo else {"photo": ("", b"", "application/octet-stream")}
    return client.post(PAGE, data=data, files=files, follow_redirects=False)


def _rows(uow: UnitOfWork, member: Member) -> int:
    uow.session.expire_all()
    return (
        uow.session.scalar(
            select(func.count()).select_from(Redemption).where(Redemption.member_id == member.id)
        )
        or 0
    )


def _live(uow: UnitOfWork, world: World, **over: Any) -> Benefit:
    fields: dict[str, Any] = {"title": "20% off dinner", "channels": ["voucher"]}
    fields.update(over)
    return bf.make_benefit(uow, world.holder, **fields)


def test_a_scanned_qr_code_redeems_once_and_a_second_scan_is_refused(
    client: TestClient, world: World, uow: UnitOfWork, settings: Settings
) -> None:
    benefit = _live(uow, world, budget_minor=50_000)
    member = f.make_member(uow)
    code = bf.code_at(settings, member, uow.clock.now())
    sign_in(client, world.counter)
    page = client.get(PAGE)
    assert page.status_code == 200
    # The only active voucher benefit is chosen already; the camera input is there.
    assert f'value="{benefit.public_id}" id="redeem-benefit-id" checked' in page.text
    assert 'type="file" accept="image/*" capture="environment"' in page.text
    assert '<script src="/static/merchant-redeem.js" defer></script>' in page.text

    photo = ("qr.png", qr_png(code), "image/png")
    done = post_redeem(
        client, {"benefit_id": benefit.public_id, "purchase_amount": "30.00"}, photo=photo
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/merchant/redeem?done=red_")
    text = text_of(client.get(done.headers["location"]).text)
    assert "Redeemed: 20% off dinner" in text
    assert "Take £6.00 off the bill." in text
    assert "The member pays £24.00 instead of £30.00." in text
    assert f"Member {member.member_number}" in text
    assert _rows(uow, member) == 1
    row = uow.session.scalars(select(Redemption).where(Redemption.member_id == member.id)).one()
    assert (row.purchase_amount_minor, row.reward_minor) == (3000, 600)

    again = post_redeem(
        client, {"benefit_id": benefit.public_id, "purchase_amount": "30.00"}, photo=photo
    )
    assert again.status_code == 409
    assert field_error(again.text, "redeem-photo") == (
        "This member code has been used already: ask the member to show a fresh one."
    )
    # What was typed is kept, the code read from the photo too.
    assert 'name="purchase_amount" type="text" value="30.00"' in again.text
    assert f'name="code" type="text" value="{code}"' in again.text
    assert _rows(uow, member) == 1


def test_a_typed_code_and_the_members_limit(
    client: TestClient, world: World, uow: UnitOfWork, settings: Settings
) -> None:
    benefit = _live(uow, world, member_limit=1, limit_period=LimitPeriod.DAY)
    member = f.make_member(uow)
    now = uow.clock.now()
    sign_in(client, world.counter)
    code = bf.code_at(settings, member, now)
    spaced = f"{code[:6]} {code[6:12]} {code[12:]}"
    first = post_redeem(
        client, {"code": spaced, "benefit_id": benefit.public_id, "purchase_amount": "12"}
    )
    assert first.status_code == 303, first.text
    # The code of the window before is still valid, and another code: the limit refuses it.
    earlier = bf.code_at(settings, member, now - timedelta(seconds=30))
    refused = post_redeem(
        client, {"code": earlier, "benefit_id": benefit.public_id, "purchase_amount": "12"}
    )
    assert refused.status_code == 409
    assert field_error(refused.text, "redeem-code") == (
        "The member has used this benefit once today, the most it allows."
    )
    assert _rows(uow, member) == 1
    stale = bf.code_at(settings, member, now - timedelta(minutes=2))
    expired = post_redeem(
        client, {"code": stale, "benefit_id": benefit.public_id, "purchase_amount": "12"}
    )
    assert expired.status_code == 422
    assert field_error(expired.text, "redeem-code") == (
        "The member code has expired or is not valid; ask the member to refresh it."
    )
    assert _rows(uow, member) == 1


def test_a_double_tap_of_one_form_redeems_once(
    client: TestClient, world: World, uow: UnitOfWork, settings: Settings
) -> None:
    benefit = _live(uow, world)
    member = f.make_member(uow)
    sign_in(client, world.counter)
    page = client.get(PAGE).text
    fields = {
        "code": bf.code_at(settings, member, uow.clock.now()),
        "benefit_id": benefit.public_id,
        "purchase_amount": "40.00",
    }
    key, csrf = _key(page), csrf_from(page)
    first = post_redeem(client, fields, key=key, csrf=csrf)
    second = post_redeem(client, fields, key=key, csrf=csrf)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert _rows(uow, member) == 1
    # Each rendering of the form carries its own key.
    assert _key(client.get(PAGE).text) != key


def test_what_a_gift_gives_and_a_benefit_that_needs_the_bill(
    client: TestClient, world: World, uow: UnitOfWork, settings: Settings
) -> None:
    gift = _live(
        uow,
        world,
        title="Free dessert",
        kind=BenefitKind.GIFT,
        percent_bps=None,
        max_reward_minor=None,
        regular_price_minor=None,
        public_discount_bps=None,
        offer_details="One dessert of the day",
    )
    percent = _live(uow, world)
    member = f.make_member(uow)
    sign_in(client, world.counter)
    code = bf.code_at(settings, member, uow.clock.now())
    page = client.get(PAGE).text
    assert "checked" not in page  # two benefits: the staff choose
    missing = post_redeem(client, {"code": code, "benefit_id": percent.public_id})
    assert missing.status_code == 422
    assert field_error(missing.text, "redeem-purchase-amount") == (
        "Enter the bill amount: this benefit is worked out from it."
    )
    assert f'value="{code}"' in missing.text
    nothing = post_redeem(client, {"code": code})
    assert field_error(nothing.text, "redeem-benefit-id") == "Choose the benefit the member uses."
    assert _rows(uow, member) == 0
    done = post_redeem(client, {"code": code, "benefit_id": gift.public_id})
    assert done.status_code == 303, done.text
    text = text_of(client.get(done.headers["location"]).text)
    assert "Give the member: Gift — One dessert of the day" in text


def test_photos_that_cannot_be_read_are_explained(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    benefit = _live(uow, world)
    member = f.make_member(uow)
    sign_in(client, world.counter)
    fields = {"benefit_id": benefit.public_id, "purchase_amount": "10"}
    cases = [
        (("notes.txt", b"not a picture", "text/plain"), "That file is not a photo"),
        (("broken.jpg", b"\xff\xd8 not really a jpeg", "image/jpeg"), "not a photo we can read"),
        (("big.jpg", b"\xff" * (8 * 1024 * 1024 + 10), "image/jpeg"), "larger than 8 MB"),
    ]
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, format="PNG")
    cases.append((("wall.png", blank.getvalue(), "image/png"), "No QR code found in the photo"))
    for photo, words in cases:
        response = post_redeem(client, fields, photo=photo)
        assert response.status_code == 422, photo[0]
        error = field_error(response.text, "redeem-photo")
        assert words in (error or ""), (photo[0], error)
        assert 'name="purchase_amount" type="text" value="10"' in response.text
    assert _rows(uow, member) == 0


def test_another_merchants_redemption_is_not_shown(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    other = f.make_merchant(uow, trading_name="Elsewhere")
    theirs = bf.make_redemption(uow, bf.make_benefit(uow, other), f.make_member(uow))
    sign_in(client, world.counter)
    assert client.get(f"{PAGE}?done={theirs.public_id}").status_code == 404
