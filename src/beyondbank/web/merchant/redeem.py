"""Redeeming a member's voucher at the counter, in one step: the member's code (typed, or read on
the server from a photo of the QR code on the member's phone), the benefit and the bill amount,
through the redemption service with an Idempotency-Key from the rendered form (a double tap
redeems once)."""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zxingcpp
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile

from beyondbank.alliance import service as alliance
from beyondbank.benefits import redemptions, rules
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import Benefit, BenefitStatus, Channel, Redemption
from beyondbank.benefits.schemas import RedemptionIn
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.money import Money
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.merchant.guards import Redeemer, merchant_id_of
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked

router = APIRouter(prefix="/merchant", include_in_schema=False)

MAX_PHOTO_BYTES = 8 * 1024 * 1024  # a phone camera's JPEG is 2–5 MB
# A photo is decoded in memory: refuse images whose pixels alone would take too much of it.
MAX_PHOTO_PIXELS = 50_000_000
FORM_FIELDS = ("code", "benefit_id", "location_id", "purchase_amount_minor")
ACTION = "/merchant/redeem"


@dataclass(frozen=True, slots=True)
class Choice:
    """A benefit the counter can redeem now, and whether it needs the bill amount."""

    benefit: Benefit
    summary: str
    needs_amount: bool


def counter_benefits(uow: UnitOfWork, principal: Principal) -> list[Choice]:
    """This merchant's active voucher benefits (a merchant has a handful, never a page's worth)."""
    rows, _more = benefits.list_benefits(
        uow, principal, status=BenefitStatus.ACTIVE, limit=MAX_LIMIT
    )
    return [
        Choice(
            b,
            rules.describe_reward(benefits.reward_of(b), b.currency),
            rules.needs_amount(b.kind, b.min_spend_minor),
        )
        for b in rows
        if Channel.VOUCHER.value in b.channels
    ]


def _page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    *,
    form: Form | None = None,
    done: Redemption | None = None,
    status_code: int = 200,
) -> Response:
    merchant = alliance.merchant_by_id(uow, merchant_id_of(principal))
    choices = counter_benefits(uow, principal)
    form = form or Form("redeem")
    if len(choices) == 1 and not form.value("benefit_id"):
        form.values["benefit_id"] = choices[0].benefit.public_id
    # A fresh key for every form shown: two posts of this form are one redemption.
    form.values["idempotency_key"] = secrets.token_urlsafe(24)
    locations = [loc for loc in merchant.locations if loc.active]
    context: dict[str, Any] = {
        "merchant": merchant,
        "form": form,
        "choices": choices,
        "benefit_options": [(c.benefit.public_id, _choice_label(c)) for c in choices],
        "location_options": [(loc.public_id, loc.name) for loc in locations],
        "max_photo_mb": MAX_PHOTO_BYTES // (1024 * 1024),
        "done": _done_view(uow, done) if done else None,
    }
    return render(
        request, "merchant/redeem.html", context, principal=principal, status_code=status_code
    )


def _choice_label(choice: Choice) -> str:
    if choice.needs_amount:
        return _(
            "%(title)s: %(reward)s (needs the bill amount)",
            title=choice.benefit.title,
            reward=choice.summary,
        )
    return _("%(title)s: %(reward)s", title=choice.benefit.title, reward=choice.summary)


def _done_view(uow: UnitOfWork, redemption: Redemption) -> dict[str, Any]:
    benefit = benefits.benefit_by_id(uow, redemption.benefit_id)
    return {
        "redemption": redemption,
        "benefit": benefit,
        "summary": rules.describe_reward(benefits.reward_of(benefit), benefit.currency),
        "cash": rules.is_cash(benefit.kind),
        "pays": (
            redemption.purchase_amount_minor - redemption.reward_minor
            if redemption.purchase_amount_minor is not None
            else None
        ),
    }


@router.get("/redeem", response_class=HTMLResponse)
def redeem_page(
    request: Request, uow: UoW, principal: Redeemer, done: str | None = None
) -> Response:
    # `done` names the redemption just made (another merchant's is a 404, as in the API).
    made = redemptions.get_redemption(uow, principal, done) if done else None
    return _page(request, uow, principal, done=made)


@router.post("/redeem", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def redeem_post(
    request: Request,
    uow: UoW,
    principal: Redeemer,
    settings: SettingsDep,
    posted: PostedForm,
) -> Response:
    form = Form("redeem", values=posted.typed())
    photo = (await request.form()).get("photo")
    scanned = isinstance(photo, UploadFile) and bool(photo.filename)
    if scanned:
        assert isinstance(photo, UploadFile)
        code, error = read_code(await photo.read(MAX_PHOTO_BYTES + 1), photo.content_type)
        if error:
            form.errors["photo"] = error
        else:
            form.values["code"] = code
    choices = {c.benefit.public_id: c for c in counter_benefits(uow, principal)}
    body = _body(form, choices)
    messages = {
        "code": _("Type the member's code, or take a photo of the QR code on their phone."),
        "benefit_id": _("Choose the benefit the member uses."),
    }
    data = validate(RedemptionIn, body, form, messages=messages)
    data = None if form.failed else data
    key = form.value("idempotency_key")
    if data is None or not key:
        if not key and not form.failed:
            form.problem = _("The form has expired; check it and redeem again.")
        _move_code_error(form, scanned)
        return _page(request, uow, principal, form=form, status_code=422)
    try:
        outcome = redemptions.redeem(
            uow,
            principal,
            data,
            secret=settings.secret_key.get_secret_value(),
            idempotency_key=key[:255],
            fingerprint=fingerprint("POST", ACTION, data.model_dump(mode="json")),
            lock_seconds=settings.idempotency_in_flight_seconds,
            render=lambda r: {"id": r.public_id},
        )
    except Problem as problem:
        uow.rollback()
        _explain(form, problem)
        _move_code_error(form, scanned)
        return _page(request, uow, principal, form=form, status_code=problem.status)
    return RedirectResponse(f"{ACTION}?done={outcome.body['id']}", status_code=303)


def _body(form: Form, choices: dict[str, Choice]) -> dict[str, Any]:
    """The redemption request as the API takes it: the bill in minor units of the benefit's
    currency, required only when the chosen benefit needs it."""
    body = nested(form.values, ("code", "benefit_id", "location_id"))
    if "code" in body:
        body["code"] = "".join(str(body["code"]).split())
    typed = form.value("purchase_amount").strip()
    chosen = choices.get(form.value("benefit_id"))
    if chosen is None:
        if form.value("benefit_id"):
            form.errors.setdefault(
                "benefit_id", _("Not one of this counter's active voucher benefits.")
            )
        return body
    if not typed:
        if chosen.needs_amount:
            form.errors.setdefault(
                "purchase_amount", _("Enter the bill amount: this benefit is worked out from it.")
            )
        return body
    try:
        amount = Money.parse(typed.replace(",", ""), chosen.benefit.currency)
    except ValueError:
        form.errors.setdefault("purchase_amount", _("Write the amount as a number, e.g. 24.50."))
        return body
    if amount.amount < 0:
        form.errors.setdefault("purchase_amount", _("The amount cannot be negative."))
        return body
    body["purchase_amount_minor"] = amount.amount
    return body


def _explain(form: Form, problem: Problem) -> None:
    """The service's reason beside the field it is about; a refusal about the voucher itself
    (used already, limit reached, not open now) beside the member's code."""
    form.absorb(problem, FORM_FIELDS)
    if "purchase_amount_minor" in form.errors:
        form.errors["purchase_amount"] = form.errors.pop("purchase_amount_minor")
    if "code" in form.errors or not form.errors:
        form.errors["code"] = problem.detail


def _move_code_error(form: Form, scanned: bool) -> None:
    """A code read from a photo is explained beside the photo the staff took."""
    if scanned and "code" in form.errors:
        form.errors.setdefault("photo", form.errors.pop("code"))


def read_code(data: bytes, content_type: str | None) -> tuple[str, str | None]:
    """The member code in a photo of the member's phone, or what is wrong with the photo."""
    if len(data) > MAX_PHOTO_BYTES:
        return "", _(
            "The photo is larger than %(mb)d MB: take it again at a lower resolution.",
            mb=MAX_PHOTO_BYTES // (1024 * 1024),
        )
    if not data:
        return "", _("The photo is empty: take it again.")
    if content_type and not content_type.startswith("image/"):
        return "", _("That file is not a photo: choose a JPEG or PNG image.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PHOTO_PIXELS:
                return "", _("The photo is too large to read: take it again.")
            found = zxingcpp.read_barcodes(image.convert("L"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return "", _("That file is not a photo we can read: choose a JPEG or PNG image.")
    codes = _qr_texts(found)
    if not codes:
        return "", _(
            "No QR code found in the photo: hold the phone flat and closer, or type the code."
        )
    return codes[0], None


def _qr_texts(found: Sequence[Any]) -> list[str]:
    return [
        str(result.text).strip()
        for result in found
        if result.format == zxingcpp.BarcodeFormat.QRCode and str(result.text).strip()
    ]
