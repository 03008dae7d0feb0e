"""The benefits near me (nearest first, by life domain) and a benefit's page: what, where, when,
the uses left for me and how to use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Circle, Member
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import Benefit, Channel
from beyondbank.core.geo import valid_coordinates
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web.customer import display
from beyondbank.web.customer.membership import member_code
from beyondbank.web.customer.offers import offer
from beyondbank.web.i18n import N_, _, format_locale
from beyondbank.web.pages import render
from beyondbank.web.session import CustomerPage

router = APIRouter(include_in_schema=False)

# A phone screen or two of benefits per page; the next ones are a link away.
PAGE_SIZE = 20
# The limit period in words, after a count: "2 left for you this week".
PERIOD_WORDS = {
    "day": N_("today"),
    "week": N_("this week"),
    "month": N_("this month"),
    "campaign": N_("in this campaign"),
}
CHANNEL_WORDS = {
    Channel.VOUCHER.value: N_("Show your member code at the counter"),
    Channel.CARD_LINKED.value: N_("Pay with a card you linked to your membership"),
    Channel.ONLINE.value: N_("Online, with your member number"),
}


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """The point the list is sorted from, and where it came from (said on the page)."""

    point: tuple[float, float] | None
    source: str  # device | circle | none
    circle_name: str | None = None


def _coordinate(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def whereabouts(
    lat: str | None, lon: str | None, circles: Callable[[], list[Circle]]
) -> Whereabouts:
    """Where the customer is: the browser's position when the page was given one, else the
    centre of their first geographic circle (`circles` gives the member's, asked only then),
    else nowhere (no distances then)."""
    latitude, longitude = _coordinate(lat), _coordinate(lon)
    if latitude is not None and longitude is not None and valid_coordinates(latitude, longitude):
        return Whereabouts((latitude, longitude), "device")
    for circle in circles():
        if circle.center_latitude is not None and circle.center_longitude is not None:
            centre = (circle.center_latitude, circle.center_longitude)
            return Whereabouts(centre, "circle", circle.name)
    return Whereabouts(None, "none")


def circles_of(uow: UnitOfWork, member: Member | None) -> list[Circle]:
    """The member's circles (none for a customer who is not a member), worked out once a page."""
    return [] if member is None else [c for c, _why in alliance.member_circles(uow, member)]


def _domain(code: str | None) -> LifeDomain | None:
    try:
        return LifeDomain(code) if code else None
    except ValueError:
        return None  # an unknown domain in a hand-typed link: show every domain


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10_000 else 1


@router.get("/app/benefits", response_class=HTMLResponse)
def benefits_near_me(
    request: Request,
    uow: UoW,
    principal: CustomerPage,
    lat: str | None = None,
    lon: str | None = None,
    domain: str | None = None,
    page: str | None = None,
) -> Response:
    member = benefits.member_of(uow, principal)
    circles = circles_of(uow, member)
    where = whereabouts(lat, lon, lambda: circles)
    chosen = _domain(domain)
    codes = [s.code for s in taxonomy().domain(chosen).sub_industries] if chosen else None
    number = _page_number(page)
    now, locale = uow.clock.now(), format_locale()
    found = benefits.member_benefits_near(
        uow,
        principal,
        point=where.point,
        sub_industries=codes,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        circle_ids=[c.id for c in circles],
    )
    kept = _point_params(where)
    if chosen:
        kept["domain"] = chosen.value
    pages = max(1, -(-found.total // PAGE_SIZE))
    context = {
        "member": member,
        "where": where,
        "kept": kept,
        "domain": chosen.value if chosen else "",
        "domains": [d.code.value for d in taxonomy().domains],
        "items": [
            {**offer(n.view, now, locale), "location": n.location, "distance": n.distance_m}
            for n in found.items
        ],
        "total": found.total,
        "page": number,
        "pages": pages,
        "prev_link": _link({**kept, "page": str(number - 1)}) if number > 1 else None,
        "next_link": _link({**kept, "page": str(number + 1)}) if number < pages else None,
        "distance": display.distance,
        "period_words": PERIOD_WORDS,
    }
    return render(request, "customer/benefits.html", context, principal=principal)


def _point_params(where: Whereabouts) -> dict[str, str]:
    """The browser's position for the next links (a circle's centre is found again anyway)."""
    if where.source != "device" or where.point is None:
        return {}
    return {"lat": f"{where.point[0]:.5f}", "lon": f"{where.point[1]:.5f}"}


def _link(params: dict[str, str]) -> str:
    """A link to the list; the first page is the list without a page number."""
    kept = {k: v for k, v in params.items() if v and not (k == "page" and v == "1")}
    return "/app/benefits" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/app/benefits/{benefit_id}", response_class=HTMLResponse)
def benefit_page(
    request: Request,
    benefit_id: str,
    uow: UoW,
    settings: SettingsDep,
    principal: CustomerPage,
    lat: str | None = None,
    lon: str | None = None,
) -> Response:
    """One benefit open to me; one I may not see (another circle's, not active) is a 404."""
    view = benefits.member_benefit(uow, principal, benefit_id)
    member = benefits.member_of(uow, principal)
    where = whereabouts(lat, lon, lambda: circles_of(uow, member))
    shows_code = member is not None and Channel.VOUCHER.value in view.benefit.channels
    context = {
        **offer(view, uow.clock.now(), format_locale()),
        "member": member,
        "where": where,
        "locations": benefits.location_distances(view.merchant, where.point),
        "code": member_code(uow, principal, settings) if shows_code else None,
        "channels": [_(CHANNEL_WORDS[c]) for c in view.benefit.channels if c in CHANNEL_WORDS],
        "left": _left_for_me(view.benefit, view, member),
        "distance": display.distance,
        "back": _link(_point_params(where)),
    }
    response = render(request, "customer/benefit.html", context, principal=principal)
    if shows_code:
        # The page shows a member code, a credential for under a minute: never cached anywhere.
        response.headers["Cache-Control"] = "no-store"
    return response


def _left_for_me(
    benefit: Benefit, view: benefits.MemberBenefit, member: Member | None
) -> str | None:
    """The uses left for me in the benefit's period, in words; None when it has no limit."""
    if benefit.member_limit is None:
        return None
    period = _(PERIOD_WORDS[benefit.limit_period.value])
    if member is None:
        return _(
            "Members may use it %(n)s times %(period)s.", n=benefit.member_limit, period=period
        )
    return _(
        "%(left)s of %(n)s uses left for you %(period)s.",
        left=view.remaining_this_period,
        n=benefit.member_limit,
        period=period,
    )
