"""The merchant's benefits: the list (status, dates, budget used), and for the merchant's admin the
new and edit forms and sending a benefit for the bank's approval, through the benefits service as
the API does. Amounts are typed in money and percentages, and sent in minor units and basis
points; when the price-integrity rule refuses a benefit, the form says why beside the fields."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.benefits import rules
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import (
    CASH_KINDS,
    Benefit,
    BenefitKind,
    BenefitStatus,
    Channel,
    LimitPeriod,
)
from beyondbank.benefits.schemas import BenefitIn, BenefitTermsIn
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem
from beyondbank.core.money import Money
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web.forms import Form, PostedForm, validate
from beyondbank.web.i18n import N_, _
from beyondbank.web.merchant.guards import BenefitReader, BenefitWriter
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash
from beyondbank.web.templating import words

router = APIRouter(prefix="/merchant", include_in_schema=False)

# Typed in money, sent in minor units; typed in percent, sent in basis points.
MONEY_FIELDS = {
    "min_spend": "min_spend_minor",
    "max_reward": "max_reward_minor",
    "threshold": "threshold_minor",
    "fixed": "fixed_minor",
    "budget": "budget_minor",
    "regular_price": "regular_price_minor",
    "public_price": "public_price_minor",
}
PERCENT_FIELDS = {"percent": "percent_bps", "public_discount": "public_discount_bps"}
PLAIN_FIELDS = (
    "title",
    "description",
    "kind",
    "valid_from",
    "valid_to",
    "hour_start",
    "hour_end",
    "points_multiplier",
    "offer_details",
    "member_limit",
    "limit_period",
    "quantity",
    "new_to_merchant_days",
)
# A blank field the schema gives a default: the default, so an edit can clear it too.
DEFAULTS: dict[str, Any] = {"hour_start": 0, "hour_end": 24, "min_spend_minor": 0}
FORM_NAME_OF = {schema: name for name, schema in {**MONEY_FIELDS, **PERCENT_FIELDS}.items()}
SCHEMA_FIELDS = (
    *PLAIN_FIELDS,
    *MONEY_FIELDS.values(),
    *PERCENT_FIELDS.values(),
    "channels",
    "weekdays",
    "publicly_available",
)
REWARD_FIELDS = ("percent_bps", "max_reward_minor", "threshold_minor", "fixed_minor")
EDITABLE = (BenefitStatus.DRAFT, BenefitStatus.REJECTED)
CHANNEL_NAMES = {
    Channel.VOUCHER: N_("Voucher at the counter"),
    Channel.CARD_LINKED: N_("Card-linked (automatic on card payments)"),
    Channel.ONLINE: N_("Online"),
}
KIND_NAMES = {
    BenefitKind.PERCENT_OFF: N_("Percent off"),
    BenefitKind.AMOUNT_OFF: N_("Amount off"),
    BenefitKind.SPEND_THRESHOLD: N_("Spend a threshold, get an amount off"),
    BenefitKind.POINTS_MULTIPLIER: N_("Points multiplier"),
    BenefitKind.GIFT: N_("Gift"),
    BenefitKind.FREE_TRIAL: N_("Free trial"),
    BenefitKind.EVENT: N_("Event"),
}
PERIOD_NAMES = {
    LimitPeriod.DAY: N_("per day"),
    LimitPeriod.WEEK: N_("per week"),
    LimitPeriod.MONTH: N_("per month"),
    LimitPeriod.CAMPAIGN: N_("for the whole campaign"),
}
MESSAGES = {
    "channels": N_("Tick at least one way members use it."),
    "weekdays": N_("Tick at least one day."),
}


# -- the list -------------------------------------------------------------------------------------


@router.get("/benefits", response_class=HTMLResponse)
def benefit_list(request: Request, uow: UoW, principal: BenefitReader) -> Response:
    # A merchant has a handful of benefits; the newest first.
    rows, _more = benefits.list_benefits(uow, principal, limit=MAX_LIMIT)
    context = {
        "rows": [
            {
                "benefit": b,
                "summary": rules.describe_reward(benefits.reward_of(b), b.currency),
                "editable": b.status in EDITABLE,
                "budget_used": (
                    b.budget_minor - (b.budget_remaining_minor or 0)
                    if b.budget_minor is not None
                    else None
                ),
                "quantity_used": (
                    b.quantity - (b.quantity_remaining or 0) if b.quantity is not None else None
                ),
            }
            for b in reversed(rows)
        ],
    }
    return render(request, "merchant/benefits.html", context, principal=principal)


# -- new and edit -----------------------------------------------------------------------------


def _options() -> dict[str, Any]:
    return {
        "kind_options": [(k.value, _(KIND_NAMES[k])) for k in BenefitKind],
        "channel_options": [(c.value, _(CHANNEL_NAMES[c])) for c in Channel],
        "period_options": [(p.value, _(PERIOD_NAMES[p])) for p in LimitPeriod],
        "weekday_options": [
            (str(n), name)
            for n, name in enumerate(
                (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")), start=1
            )
        ],
        "availability_options": [("no", _("No, only members")), ("yes", _("Yes, anyone"))],
    }


def _form_page(
    request: Request,
    principal: Principal,
    form: Form,
    *,
    currency: str,
    benefit: Benefit | None = None,
    rule: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "form": form,
        "benefit": benefit,
        "currency": currency,
        "rule": rule,
        "action": f"/merchant/benefits/{benefit.public_id}/edit"
        if benefit
        else "/merchant/benefits/new",
        **_options(),
    }
    return render(
        request, "merchant/benefit_form.html", context, principal=principal, status_code=status_code
    )


@router.get("/benefits/new", response_class=HTMLResponse)
def new_benefit(
    request: Request, uow: UoW, principal: BenefitWriter, settings: SettingsDep
) -> Response:
    today = uow.clock.now().date().isoformat()
    form = Form(
        "benefit",
        values={
            "kind": BenefitKind.PERCENT_OFF.value,
            "channels": [Channel.VOUCHER.value],
            "weekdays": [str(n) for n in range(1, 8)],
            "valid_from": today,
            "hour_start": "0",
            "hour_end": "24",
            "limit_period": LimitPeriod.CAMPAIGN.value,
        },
    )
    return _form_page(request, principal, form, currency=settings.default_currency)


@router.post("/benefits/new", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_benefit(
    request: Request,
    uow: UoW,
    principal: BenefitWriter,
    settings: SettingsDep,
    posted: PostedForm,
) -> Response:
    currency = settings.default_currency
    form = Form("benefit", values=posted.typed())
    body = terms_body(form, currency)
    data = validate(BenefitIn, body, form, messages=_messages())
    _rename_errors(form)
    if data is None or form.failed:
        return _form_page(request, principal, form, currency=currency, status_code=422)
    try:
        benefit = benefits.create_benefit(uow, principal, data, default_currency=currency)
    except Problem as problem:
        uow.rollback()
        return _refused(request, principal, form, problem, currency=currency)
    return _after_save(request, uow, principal, benefit, form, created=True)


@router.get("/benefits/{benefit_id}/edit", response_class=HTMLResponse)
def edit_benefit(benefit_id: str, request: Request, uow: UoW, principal: BenefitWriter) -> Response:
    benefit = benefits.get_benefit(uow, principal, benefit_id)
    if benefit.status not in EDITABLE:
        return _not_editable(request, benefit)
    form = Form("benefit", values=form_values(benefit))
    return _form_page(request, principal, form, currency=benefit.currency, benefit=benefit)


@router.post("/benefits/{benefit_id}/edit", response_class=HTMLResponse, dependencies=[CsrfChecked])
def update_benefit(
    benefit_id: str, request: Request, uow: UoW, principal: BenefitWriter, posted: PostedForm
) -> Response:
    benefit = benefits.get_benefit(uow, principal, benefit_id)
    if benefit.status not in EDITABLE:
        return _not_editable(request, benefit)
    form = Form("benefit", values=posted.typed())
    body = terms_body(form, benefit.currency)
    data = validate(BenefitTermsIn, body, form, messages=_messages())
    _rename_errors(form)
    if data is None or form.failed:
        return _form_page(
            request, principal, form, currency=benefit.currency, benefit=benefit, status_code=422
        )
    # Every field the form shows is restated, so a field cleared on the form is cleared.
    changes = {name: body.get(name) for name in SCHEMA_FIELDS}
    try:
        benefit = benefits.update_benefit(uow, principal, benefit, changes)
    except Problem as problem:
        uow.rollback()
        return _refused(
            request, principal, form, problem, currency=benefit.currency, benefit=benefit
        )
    return _after_save(request, uow, principal, benefit, form, created=False)


@router.post(
    "/benefits/{benefit_id}/submit", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def submit_benefit(
    benefit_id: str, request: Request, uow: UoW, principal: BenefitWriter
) -> Response:
    benefit = benefits.get_benefit(uow, principal, benefit_id)
    try:
        benefits.submit(uow, principal, benefit)
    except Problem as problem:
        uow.rollback()
        if benefit.status not in EDITABLE:
            flash(request, problem.detail, "error")
            return RedirectResponse("/merchant/benefits", status_code=303)
        form = Form("benefit", values=form_values(benefit))
        return _refused(
            request, principal, form, problem, currency=benefit.currency, benefit=benefit
        )
    flash(
        request,
        _("%(title)s is sent to the bank for approval.", title=benefit.title),
    )
    return RedirectResponse("/merchant/benefits", status_code=303)


def _after_save(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    benefit: Benefit,
    form: Form,
    *,
    created: bool,
) -> Response:
    """Saved; with "send for approval" the benefit is submitted too (its own step, as in the API)."""
    if form.value("then") == "submit":
        try:
            benefits.submit(uow, principal, benefit)
        except Problem as problem:
            uow.rollback()
            flash(
                request,
                _("The benefit is saved as it is, but not sent: %(why)s", why=problem.detail),
                "error",
            )
            return RedirectResponse(f"/merchant/benefits/{benefit.public_id}/edit", status_code=303)
        flash(
            request, _("%(title)s is saved and sent to the bank for approval.", title=benefit.title)
        )
    elif created:
        flash(request, _("%(title)s is saved as a draft.", title=benefit.title))
    else:
        flash(request, _("%(title)s is saved.", title=benefit.title))
    return RedirectResponse("/merchant/benefits", status_code=303)


def _refused(
    request: Request,
    principal: Principal,
    form: Form,
    problem: Problem,
    *,
    currency: str,
    benefit: Benefit | None = None,
) -> Response:
    form.absorb(problem, SCHEMA_FIELDS)
    rule = None
    if isinstance(problem, benefits.PriceIntegrity):
        rule = {
            "reason": problem.detail,
            "member": problem.extra.get("member_price_minor"),
            "public": problem.extra.get("public_price_minor"),
        }
        # The whole reason stands beside the declared prices; the reward's fields point to it.
        for name in REWARD_FIELDS:
            if name in form.errors:
                form.errors[name] = _(
                    "With this reward members would not pay less than everyone else: "
                    "see what everyone else pays, below."
                )
        form.problem = _("The benefit is not better than what everyone else gets.")
    _rename_errors(form)
    return _form_page(
        request,
        principal,
        form,
        currency=currency,
        benefit=benefit,
        rule=rule,
        status_code=problem.status,
    )


def _not_editable(request: Request, benefit: Benefit) -> Response:
    flash(
        request,
        _(
            "%(title)s is %(status)s: only a draft or a rejected benefit can be edited.",
            title=benefit.title,
            status=words(benefit.status),
        ),
        "error",
    )
    return RedirectResponse("/merchant/benefits", status_code=303)


def _messages() -> dict[str, str]:
    return {name: _(text) for name, text in MESSAGES.items()}


# -- typed values and the request's fields ------------------------------------------------------


def terms_body(form: Form, currency: str) -> dict[str, Any]:
    """The benefit's terms as the API takes them, from what was typed; a field that does not
    parse gets its error beside it and is left out."""
    body: dict[str, Any] = {}
    for name in PLAIN_FIELDS:
        value = form.value(name).strip()
        if value:
            body[name] = value
    for name, schema in MONEY_FIELDS.items():
        minor = _money(form, name, currency)
        if minor is not None:
            body[schema] = minor
    for name, schema in PERCENT_FIELDS.items():
        bps = _percent(form, name)
        if bps is not None:
            body[schema] = bps
    body["channels"] = form.chosen("channels")
    body["weekdays"] = form.chosen("weekdays")
    kind = form.value("kind")
    available = {"yes": True, "no": False}.get(form.value("publicly_available"))
    # Only gifts, trials, events and points declare availability; price kinds declare prices.
    if available is not None and kind not in {k.value for k in CASH_KINDS}:
        body["publicly_available"] = available
    for schema, default in DEFAULTS.items():
        body.setdefault(schema, default)
    return body


def _money(form: Form, name: str, currency: str) -> int | None:
    typed = form.value(name).strip().replace(",", "")
    if not typed:
        return None
    try:
        amount = Money.parse(typed, currency).amount
    except ValueError:
        form.errors[name] = _("Write an amount such as 12.50.")
        return None
    if amount < 0:
        form.errors[name] = _("The amount cannot be negative.")
        return None
    return amount


def _percent(form: Form, name: str) -> int | None:
    typed = form.value(name).strip().removesuffix("%").strip()
    if not typed:
        return None
    try:
        bps = Decimal(typed) * 100
    except InvalidOperation:
        form.errors[name] = _("Write a percentage such as 15 or 12.5.")
        return None
    if not bps.is_finite() or bps != bps.to_integral_value():
        form.errors[name] = _("Write a percentage with at most two decimals, such as 12.5.")
        return None
    return int(bps)


def _rename_errors(form: Form) -> None:
    """Errors named by the API's fields go beside the form's own (money and percent) fields."""
    for schema, name in FORM_NAME_OF.items():
        if schema in form.errors:
            form.errors.setdefault(name, form.errors.pop(schema))
        else:
            form.errors.pop(schema, None)


def form_values(benefit: Benefit) -> dict[str, Any]:
    """A stored benefit as the form shows it: amounts in money, rates in percent."""
    values: dict[str, Any] = {}
    for name in PLAIN_FIELDS:
        value = getattr(benefit, name)
        if value is not None:
            values[name] = str(getattr(value, "value", value))
    for name, schema in MONEY_FIELDS.items():
        minor = getattr(benefit, schema)
        if minor is not None:
            values[name] = str(Money(minor, benefit.currency).to_decimal())
    for name, schema in PERCENT_FIELDS.items():
        bps = getattr(benefit, schema)
        if bps is not None:
            values[name] = f"{bps / 100:g}"
    values["channels"] = list(benefit.channels)
    values["weekdays"] = [str(d) for d in benefit.weekdays]
    if not rules.is_cash(benefit.kind):
        values["publicly_available"] = "yes" if benefit.publicly_available else "no"
    return values
