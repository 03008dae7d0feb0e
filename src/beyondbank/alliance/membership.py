"""Membership: enrolment with recorded consent, member numbers, home and work places, segment
attributes, card links, and leaving (history kept; a customer may enrol again later)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance.models import CardLink, ConsentRecord, Member, MemberStatus
from beyondbank.alliance.schemas import CardIn, PlaceIn, PlacesIn
from beyondbank.alliance.service import member_for_customer
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, InvalidTransition, NotFound
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.tokens import MEMBER_NUMBER_DIGITS
from beyondbank.core.uow import UnitOfWork

CONSENT_PURPOSE = "alliance_membership"
# Numbers are random, so a clash is rare; a few fresh draws settle it.
_NUMBER_ATTEMPTS = 8


# -- member numbers --------------------------------------------------------------------------


def luhn_check_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit: it catches every single-digit typo and most swaps."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 0:  # doubled: the rightmost payload digit sits next to the check digit
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str(-total % 10)


def new_member_number() -> str:
    """Ten digits: nine random (never starting with 0, so it survives spreadsheets) and a check digit."""
    payload = str(
        secrets.randbelow(9 * 10 ** (MEMBER_NUMBER_DIGITS - 2)) + 10 ** (MEMBER_NUMBER_DIGITS - 2)
    )
    return payload + luhn_check_digit(payload)


def is_member_number(value: str) -> bool:
    return (
        len(value) == MEMBER_NUMBER_DIGITS
        and value.isdigit()
        and luhn_check_digit(value[:-1]) == value[-1]
    )


# -- enrolment -------------------------------------------------------------------------------


def _record(
    uow: UnitOfWork,
    actor: Principal,
    member: Member,
    action: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="member",
        object_id=member.public_id,
        before=before,
        after=after,
        reason=reason,
    )


def enrol(
    uow: UnitOfWork,
    actor: Principal,
    *,
    customer_id: int,
    consent_version: str,
    consent_channel: str,
    consent_granted_at: datetime | None = None,
    home: PlaceIn | None = None,
    work: PlaceIn | None = None,
    attributes: dict[str, Any] | None = None,
) -> Member:
    """Make the customer a member, recording the consent exactly as given."""
    if member_for_customer(uow, customer_id) is not None:
        raise Conflict(_("This customer is a member already."))
    now = uow.clock.now()
    member = _insert_member(uow, customer_id, now)
    _set_place(member, "home", home)
    _set_place(member, "work", work)
    member.attributes = {k: v for k, v in (attributes or {}).items() if v is not None}
    consent = ConsentRecord(
        customer_id=customer_id,
        member_id=member.id,
        purpose=CONSENT_PURPOSE,
        text_version=consent_version,
        granted_at=consent_granted_at or now,
        channel=consent_channel,
    )
    uow.session.add(consent)
    uow.session.flush()
    _record(
        uow,
        actor,
        member,
        "member.enrolled",
        after={
            **audit.snapshot(member, only=("member_number", "status", "enrolled_at")),
            "consent": audit.snapshot(
                consent, only=("purpose", "text_version", "granted_at", "channel")
            ),
        },
    )
    uow.commit()
    return member


def _insert_member(uow: UnitOfWork, customer_id: int, now: datetime) -> Member:
    """A new active membership with a fresh number; the database keeps both number and
    "one active membership per customer" unique."""
    for _attempt in range(_NUMBER_ATTEMPTS):
        member = Member(
            public_id=new_public_id("mem"),
            customer_id=customer_id,
            member_number=new_member_number(),
            status=MemberStatus.ACTIVE,
            enrolled_at=now,
            attributes={},
        )
        try:
            with uow.session.begin_nested():
                uow.session.add(member)
        except IntegrityError:
            if member_for_customer(uow, customer_id) is not None:  # enrolled concurrently
                raise Conflict(_("This customer is a member already.")) from None
            continue  # the number was taken: draw another
        return member
    raise RuntimeError("no free member number after several draws")


def _set_place(member: Member, place: str, value: PlaceIn | None) -> None:
    setattr(member, f"{place}_latitude", value.latitude if value else None)
    setattr(member, f"{place}_longitude", value.longitude if value else None)


# -- reading ---------------------------------------------------------------------------------


def my_membership(uow: UnitOfWork, actor: Principal) -> Member:
    """The signed-in customer's active membership; 404 when they are not a member."""
    member = member_for_customer(uow, actor.customer_id) if actor.customer_id else None
    if member is None:
        raise NotFound(_("You are not a member of the alliance; enrol first."))
    return member


def get_member(uow: UnitOfWork, public_id: str) -> Member:
    member = uow.session.scalars(select(Member).where(Member.public_id == public_id)).one_or_none()
    if member is None:
        raise NotFound(_("No member %(public_id)r here.", public_id=public_id))
    return member


def list_members(
    uow: UnitOfWork,
    *,
    status: MemberStatus | None,
    customer_id: int | None,
    member_number: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Member], str | None]:
    stmt = select(Member)
    for column, value in (
        (Member.status, status),
        (Member.customer_id, customer_id),
        (Member.member_number, member_number),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return paginate(uow.session, stmt, Member.id, cursor=cursor, limit=limit)


# -- changing a membership -------------------------------------------------------------------


def _ensure_active(member: Member) -> None:
    if member.status != MemberStatus.ACTIVE:
        raise InvalidTransition(
            _(
                "Membership %(member)s is %(status)s: enrol again to change it.",
                member=member.public_id,
                status=member.status.value,
            ),
            extra={"current_status": member.status.value},
        )


_PLACE_COLUMNS = ("home_latitude", "home_longitude", "work_latitude", "work_longitude")


def set_places(uow: UnitOfWork, actor: Principal, member: Member, places: PlacesIn) -> Member:
    """Set (or clear, with null) the home and work places that decide geographic circles."""
    _ensure_active(member)
    before = audit.snapshot(member, only=_PLACE_COLUMNS)
    for place in places.model_fields_set:
        _set_place(member, place, getattr(places, place))
    old, new = audit.changed(before, audit.snapshot(member, only=_PLACE_COLUMNS))
    if new:
        _record(uow, actor, member, "member.places_set", before=old, after=new)
    uow.commit()
    return member


def set_attributes(
    uow: UnitOfWork, actor: Principal, member: Member, attributes: dict[str, Any]
) -> Member:
    """Replace the segment attributes the bank shares (with the member's consent)."""
    _ensure_active(member)
    before = dict(member.attributes)
    member.attributes = {k: v for k, v in attributes.items() if v is not None}
    old, new = audit.changed(before, member.attributes)
    removed = {k: before[k] for k in before.keys() - member.attributes.keys()}
    if new or removed:
        _record(uow, actor, member, "member.attributes_set", before={**old, **removed}, after=new)
    uow.commit()
    return member


def link_card(uow: UnitOfWork, actor: Principal, member: Member, card: CardIn) -> CardLink:
    """Link a card token for card-linked benefits; a token belongs to one active member at a time."""
    _ensure_active(member)
    link = CardLink(
        public_id=new_public_id("crd"),
        member_id=member.id,
        card_token=card.card_token,
        last4=card.last4,
        linked_at=uow.clock.now(),
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(link)
    except IntegrityError:
        holder = uow.session.scalars(
            select(CardLink.member_id).where(
                CardLink.card_token == card.card_token, CardLink.unlinked_at.is_(None)
            )
        ).first()
        if holder == member.id:
            raise Conflict(_("This card is linked to your membership already.")) from None
        raise Conflict(
            _("This card is linked to another membership; it must be unlinked there first.")
        ) from None
    _record(
        uow,
        actor,
        member,
        "member.card_linked",
        after={"card": link.public_id, "last4": link.last4},
    )
    uow.commit()
    uow.session.expire(member, ["cards"])
    return link


def unlink_card(uow: UnitOfWork, actor: Principal, member: Member, card_id: str) -> CardLink:
    """Stop card-linked benefits on a card; the link stays in the history."""
    link = next((c for c in member.cards if c.public_id == card_id), None)
    if link is None:
        raise NotFound(_("No card %(card_id)r here.", card_id=card_id))
    if link.unlinked_at is not None:
        raise Conflict(_("Card %(card_id)s was unlinked already.", card_id=card_id))
    link.unlinked_at = uow.clock.now()
    _record(
        uow,
        actor,
        member,
        "member.card_unlinked",
        before={"card": link.public_id, "last4": link.last4},
    )
    uow.commit()
    return link


def leave(uow: UnitOfWork, actor: Principal, member: Member, reason: str | None) -> Member:
    """End the membership: cards unlinked and consent withdrawn, with the history kept."""
    _ensure_active(member)
    now = uow.clock.now()
    uow.session.execute(
        update(CardLink)
        .where(CardLink.member_id == member.id, CardLink.unlinked_at.is_(None))
        .values(unlinked_at=now)
    )
    uow.session.execute(
        update(ConsentRecord)
        .where(ConsentRecord.member_id == member.id, ConsentRecord.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
    )
    member.status = MemberStatus.LEFT
    member.left_at = now
    _record(
        uow,
        actor,
        member,
        "member.left",
        before={"status": MemberStatus.ACTIVE.value},
        after={"status": MemberStatus.LEFT.value},
        reason=reason,
    )
    uow.commit()
    uow.session.expire(member, ["cards"])
    return member
