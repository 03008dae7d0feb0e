"""Alliance lookups that other areas and the alliance's own use cases share, and small shared helpers.

The use cases live beside this module, one per subject: `circles`, `merchants`, `admission`,
`membership`, `relationships`. Other areas call only the functions here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, joinedload, lazyload

from beyondbank.alliance import segments
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    Branch,
    CardLink,
    Circle,
    CircleKind,
    CircleStatus,
    ManagerAssignment,
    Member,
    MemberStatus,
    Merchant,
    MerchantLocation,
    MerchantStatus,
    MerchantTerminal,
    Seat,
)
from beyondbank.core.authz import Principal, ensure_visible
from beyondbank.core.errors import FieldError, InvalidInput, NotFound
from beyondbank.core.geo import EARTH_RADIUS_M, bounding_box, distance_m
from beyondbank.core.i18n import N_, _
from beyondbank.core.uow import UnitOfWork

# Metres per degree of latitude: no two points further apart in latitude than the radius can
# be inside one circle, which lets the database discard most circles before any trigonometry.
_METRES_PER_DEGREE_LATITUDE = math.pi * EARTH_RADIUS_M / 180


def _lookup_failure(kind: str, public_id: str, field: str | None) -> NotFound | InvalidInput:
    """A missing object named in the path is a 404; one named in a request field is a 422."""
    if field:
        return InvalidInput(
            _(
                "%(field)s: no %(kind)s %(public_id)r.",
                field=field,
                kind=_(kind),
                public_id=public_id,
            ),
            errors=(FieldError(field, _("no such %(kind)s", kind=_(kind))),),
        )
    return NotFound(_("No %(kind)s %(public_id)r here.", kind=_(kind), public_id=public_id))


def lock_rows(uow: UnitOfWork, key: InstrumentedAttribute[int], ids: Iterable[int]) -> None:
    """Row locks taken in id order, so two transactions never wait on each other in a cycle.

    The order across tables is fixed too: merchant, then circles, then seats and waitlist rows.
    (SQLite has no row locks; its writers are serialised by `BEGIN IMMEDIATE` instead.)
    """
    ordered = sorted(set(ids))
    if ordered:
        uow.session.execute(select(key).where(key.in_(ordered)).order_by(key).with_for_update())


def patch_values(patch: BaseModel, *, nullable: Iterable[str] = ()) -> dict[str, Any]:
    """The fields a PATCH request sent; null clears a field only where the field may be empty."""
    values = {name: getattr(patch, name) for name in patch.model_fields_set}
    allowed = set(nullable)
    errors = tuple(
        FieldError(f"body.{name}", _("cannot be null"))
        for name, value in values.items()
        if value is None and name not in allowed
    )
    if errors:
        raise InvalidInput(_("Some fields cannot be cleared."), errors=errors)
    return values


# -- branches and circles --------------------------------------------------------------------


def get_branch(uow: UnitOfWork, public_id: str, *, field: str | None = None) -> Branch:
    branch = uow.session.scalars(select(Branch).where(Branch.public_id == public_id)).one_or_none()
    if branch is None:
        raise _lookup_failure(N_("branch"), public_id, field)
    return branch


def get_circle(uow: UnitOfWork, public_id: str, *, field: str | None = None) -> Circle:
    circle = uow.session.scalars(select(Circle).where(Circle.public_id == public_id)).one_or_none()
    if circle is None:
        raise _lookup_failure(N_("circle"), public_id, field)
    return circle


def circles_containing(uow: UnitOfWork, latitude: float, longitude: float) -> list[Circle]:
    """Active geographic circles whose area contains the point, nearest centre first."""
    candidates = uow.session.scalars(
        select(Circle)
        .where(
            Circle.kind == CircleKind.GEOGRAPHIC,
            Circle.status == CircleStatus.ACTIVE,
            func.abs(Circle.center_latitude - latitude) * _METRES_PER_DEGREE_LATITUDE
            <= Circle.radius_m,
        )
        # Where a member belongs is asked on every customer page: the circles' admission
        # requirements are read only if a caller looks at them.
        .options(lazyload(Circle.requirements))
    ).all()
    inside = []
    for circle in candidates:
        distance = distance_to_centre(circle, latitude, longitude)
        if distance is not None and circle.radius_m is not None and distance <= circle.radius_m:
            inside.append((distance, circle.id, circle))
    return [circle for _distance, _id, circle in sorted(inside, key=lambda t: (t[0], t[1]))]


def distance_to_centre(circle: Circle | Area, latitude: float, longitude: float) -> float | None:
    """Metres from the point to a geographic circle's centre; None for a segment circle."""
    if circle.center_latitude is None or circle.center_longitude is None or circle.radius_m is None:
        return None
    box = bounding_box(circle.center_latitude, circle.center_longitude, circle.radius_m)
    # A box that crosses the antimeridian cannot be compared by longitude; skip the shortcut.
    wraps = box.min_lon < -180 or box.max_lon > 180
    inside_lon = wraps or box.min_lon <= longitude <= box.max_lon
    if not (box.min_lat <= latitude <= box.max_lat and inside_lon):
        return float("inf")  # outside the bounding box: certainly outside, no trigonometry needed
    return distance_m(latitude, longitude, circle.center_latitude, circle.center_longitude)


def circle_contains(circle: Circle | Area, latitude: float, longitude: float) -> bool:
    distance = distance_to_centre(circle, latitude, longitude)
    return distance is not None and circle.radius_m is not None and distance <= circle.radius_m


def circle_ids_for(uow: UnitOfWork, public_ids: Sequence[str], *, field: str) -> list[int]:
    """Internal ids of circles named by public id; 422 naming each unknown one."""
    if not public_ids:
        return []
    rows = uow.session.execute(
        select(Circle.public_id, Circle.id).where(Circle.public_id.in_(public_ids))
    )
    found = {row.public_id: row.id for row in rows}
    missing = [(i, p) for i, p in enumerate(public_ids) if p not in found]
    if missing:
        raise InvalidInput(
            _("Some circles do not exist."),
            errors=tuple(
                FieldError(f"{field}.{i}", _("no circle %(public_id)r", public_id=p))
                for i, p in missing
            ),
        )
    return [found[p] for p in public_ids]


def circle_public_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = uow.session.execute(select(Circle.id, Circle.public_id).where(Circle.id.in_(ids)))
    return {row.id: row.public_id for row in rows}


def held_seats(
    uow: UnitOfWork, *, circle_id: int | None = None, merchant_id: int | None = None
) -> list[Seat]:
    """Seats not yet released, of one circle or one merchant, in sub-industry order, with their
    merchants and locations (contacts only when asked for: lists of seats never show them)."""
    stmt = (
        select(Seat)
        .where(Seat.released_at.is_(None))
        .options(joinedload(Seat.merchant).lazyload(Merchant.contacts))
    )
    if circle_id is not None:
        stmt = stmt.where(Seat.circle_id == circle_id)
    if merchant_id is not None:
        stmt = stmt.where(Seat.merchant_id == merchant_id)
    return list(uow.session.scalars(stmt.order_by(Seat.circle_id, Seat.sub_industry)))


def slot_holder(uow: UnitOfWork, circle_id: int, sub_industry: str) -> Seat | None:
    return uow.session.scalars(
        select(Seat).where(
            Seat.circle_id == circle_id,
            Seat.sub_industry == sub_industry,
            Seat.released_at.is_(None),
        )
    ).one_or_none()


# -- merchants: lookups other areas use ------------------------------------------------------


def get_merchant(
    uow: UnitOfWork, principal: Principal, public_id: str, *, field: str | None = None
) -> Merchant:
    """The merchant, if the principal may see it; 404 (naming `field` if given) otherwise."""
    merchant = uow.session.scalars(
        select(Merchant).where(Merchant.public_id == public_id)
    ).one_or_none()
    if merchant is None:
        errors = (FieldError(field, _("no such merchant")),) if field else ()
        raise NotFound(_("No merchant %(public_id)r here.", public_id=public_id), errors=errors)
    ensure_visible(principal, merchant.id, N_("merchant"), public_id)
    return merchant


def merchant_by_id(uow: UnitOfWork, merchant_id: int) -> Merchant:
    return uow.session.get_one(Merchant, merchant_id)


def merchant_public_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = uow.session.execute(select(Merchant.id, Merchant.public_id).where(Merchant.id.in_(ids)))
    return {row.id: row.public_id for row in rows}


def get_location(
    uow: UnitOfWork, merchant: Merchant, public_id: str, *, field: str
) -> MerchantLocation:
    """One of the merchant's own locations; 422 naming `field` if it is not."""
    location = uow.session.scalars(
        select(MerchantLocation).where(
            MerchantLocation.public_id == public_id, MerchantLocation.merchant_id == merchant.id
        )
    ).one_or_none()
    if location is None:
        raise InvalidInput(
            _("%(field)s: not a location of this merchant.", field=field),
            errors=(FieldError(field, _("not a location of this merchant")),),
        )
    return location


def current_manager_id(uow: UnitOfWork, merchant_id: int) -> int | None:
    """The user id of the merchant's relationship manager, if one is assigned."""
    return uow.session.scalars(
        select(ManagerAssignment.manager_id).where(
            ManagerAssignment.merchant_id == merchant_id, ManagerAssignment.ended_at.is_(None)
        )
    ).one_or_none()


def application_public_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = uow.session.execute(
        select(Application.id, Application.public_id).where(Application.id.in_(ids))
    )
    return {row.id: row.public_id for row in rows}


def get_application(uow: UnitOfWork, principal: Principal, public_id: str) -> Application:
    """An application the principal may see (a merchant sees only its own); 404 otherwise."""
    application = uow.session.scalars(
        select(Application).where(Application.public_id == public_id)
    ).one_or_none()
    if application is None:
        raise NotFound(_("No application %(public_id)r here.", public_id=public_id))
    ensure_visible(principal, application.merchant_id, N_("application"), public_id)
    return application


# -- members: lookups other areas use ----------------------------------------------------------


def member_by_number(uow: UnitOfWork, member_number: str) -> Member | None:
    return uow.session.scalars(
        select(Member).where(Member.member_number == member_number)
    ).one_or_none()


def member_by_public_id(uow: UnitOfWork, public_id: str) -> Member | None:
    return uow.session.scalars(select(Member).where(Member.public_id == public_id)).one_or_none()


def member_for_customer(uow: UnitOfWork, customer_id: int) -> Member | None:
    """The customer's active membership, if any."""
    return uow.session.scalars(
        select(Member).where(
            Member.customer_id == customer_id, Member.status == MemberStatus.ACTIVE
        )
    ).one_or_none()


def member_circles(uow: UnitOfWork, member: Member) -> list[tuple[Circle, list[str]]]:
    """The circles a member belongs to and why: `home` or `work` inside a geographic circle,
    `segment` when a segment circle's rule matches the member's attributes."""
    reasons: dict[int, list[str]] = {}
    circles: dict[int, Circle] = {}
    for place, latitude, longitude in (
        ("home", member.home_latitude, member.home_longitude),
        ("work", member.work_latitude, member.work_longitude),
    ):
        if latitude is not None and longitude is not None:
            for circle in circles_containing(uow, latitude, longitude):
                circles[circle.id] = circle
                reasons.setdefault(circle.id, []).append(place)
    segment_circles = uow.session.scalars(
        select(Circle)
        .where(Circle.kind == CircleKind.SEGMENT, Circle.status == CircleStatus.ACTIVE)
        .options(lazyload(Circle.requirements))
    )
    for circle in segment_circles:
        if circle.segment_rule and segments.matches(
            segments.parse_rule(circle.segment_rule), member.attributes
        ):
            circles[circle.id] = circle
            reasons.setdefault(circle.id, []).append("segment")
    return [(circles[i], reasons[i]) for i in sorted(circles)]


def member_circle_ids(uow: UnitOfWork, member: Member) -> set[int]:
    """The circles a member belongs to: geographic ones containing home or work, segment ones
    whose rule matches the member's attributes."""
    return {circle.id for circle, _reasons in member_circles(uow, member)}


def merchants_by_ids(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, Merchant]:
    """Merchants by internal id in one query (their locations and contacts in one more each)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {m.id: m for m in uow.session.scalars(select(Merchant).where(Merchant.id.in_(wanted)))}


def active_location_points(
    uow: UnitOfWork, merchant_ids: Iterable[int]
) -> dict[int, list[tuple[int, float, float]]]:
    """(location id, latitude, longitude) of each merchant's active locations, in id order: what
    measuring distances needs, without loading the merchants."""
    wanted = set(merchant_ids)
    points: dict[int, list[tuple[int, float, float]]] = {}
    if not wanted:
        return points
    rows = uow.session.execute(
        select(
            MerchantLocation.merchant_id,
            MerchantLocation.id,
            MerchantLocation.latitude,
            MerchantLocation.longitude,
        )
        .where(MerchantLocation.merchant_id.in_(wanted), MerchantLocation.active.is_(True))
        .order_by(MerchantLocation.id)
    )
    for merchant_id, location_id, latitude, longitude in rows:
        points.setdefault(merchant_id, []).append((location_id, latitude, longitude))
    return points


# -- programme figures -------------------------------------------------------------------------


def count_members(uow: UnitOfWork, status: MemberStatus = MemberStatus.ACTIVE) -> int:
    return uow.session.scalar(select(func.count()).where(Member.status == status)) or 0


def count_merchants(uow: UnitOfWork, status: MerchantStatus) -> int:
    return uow.session.scalar(select(func.count()).where(Merchant.status == status)) or 0


def count_circles(uow: UnitOfWork, status: CircleStatus = CircleStatus.ACTIVE) -> int:
    return uow.session.scalar(select(func.count()).where(Circle.status == status)) or 0


def count_applications(uow: UnitOfWork, statuses: Iterable[ApplicationStatus]) -> int:
    wanted = list(statuses)
    return uow.session.scalar(select(func.count()).where(Application.status.in_(wanted))) or 0


# -- what is taken already (bulk lookups for imports) -------------------------------------------


def linked_card_tokens(uow: UnitOfWork, tokens: Iterable[str]) -> set[str]:
    """Those of the tokens that are linked to a member now."""
    wanted = set(tokens)
    if not wanted:
        return set()
    return set(
        uow.session.scalars(
            select(CardLink.card_token).where(
                CardLink.card_token.in_(wanted), CardLink.unlinked_at.is_(None)
            )
        )
    )


def active_member_customer_ids(uow: UnitOfWork, customer_ids: Iterable[int]) -> set[int]:
    """Those of the customers who hold an active membership."""
    wanted = set(customer_ids)
    if not wanted:
        return set()
    return set(
        uow.session.scalars(
            select(Member.customer_id).where(
                Member.customer_id.in_(wanted), Member.status == MemberStatus.ACTIVE
            )
        )
    )


def terminal_holders(
    uow: UnitOfWork, acquirer_merchant_ids: Iterable[str]
) -> dict[tuple[str, str | None], str]:
    """Registered (merchant id, terminal id) pairs under these acquirer merchant ids, with the
    trading name of the merchant that holds each."""
    wanted = set(acquirer_merchant_ids)
    if not wanted:
        return {}
    rows = uow.session.execute(
        select(
            MerchantTerminal.acquirer_merchant_id,
            MerchantTerminal.terminal_id,
            Merchant.trading_name,
        )
        .join(MerchantLocation, MerchantTerminal.location_id == MerchantLocation.id)
        .join(Merchant, MerchantLocation.merchant_id == Merchant.id)
        .where(MerchantTerminal.acquirer_merchant_id.in_(wanted))
    )
    return {(r.acquirer_merchant_id, r.terminal_id): r.trading_name for r in rows}


# -- what the card-linked engine reads (plain rows, in bulk) --------------------------------


def card_holdings(uow: UnitOfWork, tokens: Iterable[str]) -> list[tuple[str, int, Any, Any]]:
    """For each of the card tokens: (token, member id, from, to) — when the token stood for the
    member, the card link's interval intersected with the membership's (to None: still does)."""
    wanted = sorted(set(tokens))
    rows: list[tuple[str, int, Any, Any]] = []
    for start in range(0, len(wanted), 5_000):
        for r in uow.session.execute(
            select(
                CardLink.card_token,
                CardLink.member_id,
                CardLink.linked_at,
                CardLink.unlinked_at,
                Member.enrolled_at,
                Member.left_at,
            )
            .join(Member, Member.id == CardLink.member_id)
            .where(CardLink.card_token.in_(wanted[start : start + 5_000]))
        ):
            begin = max(r.linked_at, r.enrolled_at)
            ends = [t for t in (r.unlinked_at, r.left_at) if t is not None]
            end = min(ends) if ends else None
            if end is None or begin < end:
                rows.append((r.card_token, r.member_id, begin, end))
    return rows


@dataclass(frozen=True, slots=True)
class Area:
    """A geographic circle's id and area, apart from any session (kept by a process's cache)."""

    id: int
    center_latitude: float
    center_longitude: float
    radius_m: float


@dataclass(frozen=True)
class CircleTests:
    """What decides membership of the active circles, read once: the geographic circles (home
    or work inside) and the segment circles' parsed rules (the member's attributes match)."""

    geographic: tuple[Area, ...]
    segment_rules: tuple[tuple[int, segments.AllOf | segments.AnyOf | segments.Condition], ...]


def circle_tests(uow: UnitOfWork) -> CircleTests:
    circles = uow.session.scalars(
        select(Circle)
        .where(Circle.status == CircleStatus.ACTIVE)
        .options(lazyload(Circle.requirements), lazyload(Circle.branch))
    ).all()
    return CircleTests(
        geographic=tuple(
            Area(c.id, c.center_latitude, c.center_longitude, c.radius_m)
            for c in circles
            if c.kind == CircleKind.GEOGRAPHIC
            and c.center_latitude is not None
            and c.center_longitude is not None
            and c.radius_m is not None
        ),
        segment_rules=tuple(
            (c.id, segments.parse_rule(c.segment_rule))
            for c in circles
            if c.kind == CircleKind.SEGMENT and c.segment_rule
        ),
    )


def circle_ids_by_member(
    uow: UnitOfWork, member_ids: Iterable[int], tests: CircleTests | None = None
) -> dict[int, set[int]]:
    """The circles each member belongs to (as `member_circle_ids`), with the circles read once
    (or taken as given: the real-time path keeps them with its snapshot)."""
    wanted = sorted(set(member_ids))
    tests = tests or circle_tests(uow)
    found: dict[int, set[int]] = {}
    for start in range(0, len(wanted), 5_000):
        for member in uow.session.execute(
            select(
                Member.id,
                Member.home_latitude,
                Member.home_longitude,
                Member.work_latitude,
                Member.work_longitude,
                Member.attributes,
            ).where(Member.id.in_(wanted[start : start + 5_000]))
        ):
            ids = {
                c.id
                for c in tests.geographic
                for lat, lon in (
                    (member.home_latitude, member.home_longitude),
                    (member.work_latitude, member.work_longitude),
                )
                if lat is not None and lon is not None and circle_contains(c, lat, lon)
            }
            ids |= {
                cid
                for cid, rule in tests.segment_rules
                if segments.matches(rule, member.attributes)
            }
            found[member.id] = ids
    return found


def alliance_terminals(uow: UnitOfWork) -> list[tuple[str, str | None, int, int]]:
    """(acquirer merchant id, terminal id or None for all, location id, merchant id) of every
    active alliance merchant's active locations."""
    rows = uow.session.execute(
        select(
            MerchantTerminal.acquirer_merchant_id,
            MerchantTerminal.terminal_id,
            MerchantLocation.id,
            Merchant.id,
        )
        .join(MerchantLocation, MerchantTerminal.location_id == MerchantLocation.id)
        .join(Merchant, MerchantLocation.merchant_id == Merchant.id)
        .where(Merchant.status == MerchantStatus.ACTIVE, MerchantLocation.active.is_(True))
    )
    return [(a, t, loc, m) for a, t, loc, m in rows]


def alliance_locations(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Active alliance merchants' active locations: ids, trading name, MCC, sub-industry, city,
    country and time zone (what descriptor resolution and the feed generator need)."""
    rows = uow.session.execute(
        select(
            Merchant.id.label("merchant_id"),
            Merchant.public_id.label("merchant_ref"),
            MerchantLocation.id.label("location_id"),
            Merchant.trading_name.label("name"),
            Merchant.mcc,
            Merchant.sub_industry,
            MerchantLocation.city,
            MerchantLocation.country,
            MerchantLocation.timezone,
        )
        .join(MerchantLocation, MerchantLocation.merchant_id == Merchant.id)
        .where(Merchant.status == MerchantStatus.ACTIVE, MerchantLocation.active.is_(True))
        .order_by(Merchant.id, MerchantLocation.id)
    )
    return [dict(r._mapping) for r in rows]


def card_tokens_ever_linked(uow: UnitOfWork) -> list[str]:
    """Every card token that stood for a member at some time, whatever stands for whom now."""
    return list(uow.session.scalars(select(CardLink.card_token).distinct()))


def linked_cards(uow: UnitOfWork) -> list[tuple[str, int, Any]]:
    """(token, member id, linked at) of every card linked now to an active member."""
    rows = uow.session.execute(
        select(CardLink.card_token, CardLink.member_id, CardLink.linked_at)
        .join(Member, Member.id == CardLink.member_id)
        .where(CardLink.unlinked_at.is_(None), Member.status == MemberStatus.ACTIVE)
        .order_by(CardLink.id)
    )
    return [(t, m, at) for t, m, at in rows]


def member_refs(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 5_000):
        found.update(
            (i, ref)
            for i, ref in uow.session.execute(
                select(Member.id, Member.public_id).where(
                    Member.id.in_(wanted[start : start + 5_000])
                )
            ).all()
        )
    return found


# -- the programme over time (console charts) ---------------------------------------------------


def _month_index(column: Any, bounds: Sequence[Any]) -> Any:
    """Which month a time falls in: -1 before `bounds[0]`, i within `[bounds[i], bounds[i+1])`,
    len(bounds)-1 from the last bound on (or when the time is NULL). Portable SQL, no date maths."""
    from sqlalchemy import case

    return case(
        *[(column < bound, index - 1) for index, bound in enumerate(bounds)],
        else_=len(bounds) - 1,
    )


def members_by_month(uow: UnitOfWork, bounds: Sequence[Any]) -> list[int]:
    """Members enrolled and not yet left at the end of each month; `bounds` are the months'
    starts and the last month's end (n + 1 instants for n months). One grouped query."""
    months = len(bounds) - 1
    rows = select(
        _month_index(Member.enrolled_at, bounds).label("joined"),
        _month_index(Member.left_at, bounds).label("left"),
    ).where(Member.enrolled_at < bounds[-1])
    inner = rows.subquery()
    grouped = uow.session.execute(
        select(inner.c.joined, inner.c.left, func.count()).group_by(inner.c.joined, inner.c.left)
    ).all()
    return [
        sum(n for joined, left, n in grouped if joined <= month < left) for month in range(months)
    ]


def all_circles(uow: UnitOfWork, status: CircleStatus = CircleStatus.ACTIVE) -> list[Circle]:
    """Every circle in a status, by name: the console's plot and coverage grid show them all."""
    return list(
        uow.session.scalars(select(Circle).where(Circle.status == status).order_by(Circle.name))
    )
