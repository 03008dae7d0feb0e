"""Alliance use cases: taxonomy, circles, merchants, admission and seats, membership, relationships."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from beyondbank.alliance import segments
from beyondbank.alliance.models import (
    Circle,
    CircleKind,
    CircleStatus,
    Member,
    MemberStatus,
    Merchant,
    MerchantLocation,
)
from beyondbank.core.authz import Principal, ensure_visible
from beyondbank.core.errors import FieldError, InvalidInput, NotFound
from beyondbank.core.geo import bounding_box, distance_m
from beyondbank.core.uow import UnitOfWork

# -- circles -------------------------------------------------------------------------------


def circles_containing(uow: UnitOfWork, latitude: float, longitude: float) -> list[Circle]:
    """Active geographic circles whose area contains the point, nearest centre first."""
    candidates = uow.session.scalars(
        select(Circle).where(
            Circle.kind == CircleKind.GEOGRAPHIC, Circle.status == CircleStatus.ACTIVE
        )
    ).all()
    inside = []
    for circle in candidates:
        distance = distance_to_centre(circle, latitude, longitude)
        if distance is not None and circle.radius_m is not None and distance <= circle.radius_m:
            inside.append((distance, circle.id, circle))
    return [circle for _, _, circle in sorted(inside, key=lambda t: (t[0], t[1]))]


def distance_to_centre(circle: Circle, latitude: float, longitude: float) -> float | None:
    """Metres from the point to a geographic circle's centre; None for a segment circle."""
    if circle.center_latitude is None or circle.center_longitude is None or circle.radius_m is None:
        return None
    box = bounding_box(circle.center_latitude, circle.center_longitude, circle.radius_m)
    if not (box.min_lat <= latitude <= box.max_lat and box.min_lon <= longitude <= box.max_lon):
        return float("inf")  # outside the bounding box: certainly outside, no trigonometry needed
    return distance_m(latitude, longitude, circle.center_latitude, circle.center_longitude)


def circle_contains(circle: Circle, latitude: float, longitude: float) -> bool:
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
            "Some circles do not exist.",
            errors=tuple(FieldError(f"{field}.{i}", f"no circle {p!r}") for i, p in missing),
        )
    return [found[p] for p in public_ids]


def circle_public_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = uow.session.execute(select(Circle.id, Circle.public_id).where(Circle.id.in_(ids)))
    return {row.id: row.public_id for row in rows}


# -- merchants: lookups other areas use ------------------------------------------------------


def get_merchant(
    uow: UnitOfWork, principal: Principal, public_id: str, *, field: str | None = None
) -> Merchant:
    """The merchant, if the principal may see it; 404 (naming `field` if given) otherwise."""
    merchant = uow.session.scalars(
        select(Merchant).where(Merchant.public_id == public_id)
    ).one_or_none()
    if merchant is None:
        errors = (FieldError(field, "no such merchant"),) if field else ()
        raise NotFound(f"No merchant {public_id!r} here.", errors=errors)
    ensure_visible(principal, merchant.id, "merchant", public_id)
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
            f"{field}: not a location of this merchant.",
            errors=(FieldError(field, "not a location of this merchant"),),
        )
    return location


# -- members: lookups other areas use ----------------------------------------------------------


def member_by_number(uow: UnitOfWork, member_number: str) -> Member | None:
    return uow.session.scalars(
        select(Member).where(Member.member_number == member_number)
    ).one_or_none()


def member_for_customer(uow: UnitOfWork, customer_id: int) -> Member | None:
    """The customer's active membership, if any."""
    return uow.session.scalars(
        select(Member).where(
            Member.customer_id == customer_id, Member.status == MemberStatus.ACTIVE
        )
    ).one_or_none()


def member_circle_ids(uow: UnitOfWork, member: Member) -> set[int]:
    """The circles a member belongs to: geographic ones containing home or work, segment ones
    whose rule matches the member's attributes."""
    ids: set[int] = set()
    for latitude, longitude in (
        (member.home_latitude, member.home_longitude),
        (member.work_latitude, member.work_longitude),
    ):
        if latitude is not None and longitude is not None:
            ids.update(c.id for c in circles_containing(uow, latitude, longitude))
    segment_circles = uow.session.scalars(
        select(Circle).where(
            Circle.kind == CircleKind.SEGMENT, Circle.status == CircleStatus.ACTIVE
        )
    )
    for circle in segment_circles:
        if circle.segment_rule and segments.matches(
            segments.parse_rule(circle.segment_rule), member.attributes
        ):
            ids.add(circle.id)
    return ids
