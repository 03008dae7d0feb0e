"""Partner organisations: registering them and looking them up (the shop's other use cases have
modules of their own)."""

from __future__ import annotations

from dataclasses import dataclass

from schwifty import BIC, IBAN
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from beyondbank.commerce.models import Partner, PartnerKind, PartnerStatus
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, FieldError, InvalidInput, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import is_currency
from beyondbank.core.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class PartnerIn:
    name: str
    legal_name: str
    country: str
    currency: str
    timezone: str
    settlement_iban: str | None = None
    settlement_bic: str | None = None
    kind: PartnerKind = PartnerKind.RETAILER


def create_partner(uow: UnitOfWork, actor: Principal, data: PartnerIn) -> Partner:
    """Register a partner organisation, an e-commerce partner or the insurer underwriting the
    bank's device protection; its settlement account must be a valid IBAN and BIC, and there is
    at most one active insurer per currency (a 409 naming the one there is)."""
    errors: list[FieldError] = []
    iban = bic = None
    if data.settlement_iban:
        try:
            iban = IBAN(data.settlement_iban).compact
        except ValueError as exc:
            errors.append(FieldError("settlement_iban", str(exc)))
    if data.settlement_bic:
        try:
            bic = str(BIC(data.settlement_bic))
        except ValueError as exc:
            errors.append(FieldError("settlement_bic", str(exc)))
    if not is_currency(data.currency):
        errors.append(FieldError("currency", _("not an ISO 4217 currency code")))
    if errors:
        raise InvalidInput(_("The partner cannot be registered as it stands."), errors=errors)
    if data.kind is PartnerKind.INSURER:
        _one_insurer(uow, data.currency)
    partner = Partner(
        public_id=new_public_id("prt"),
        kind=data.kind,
        name=data.name,
        legal_name=data.legal_name,
        status=PartnerStatus.ACTIVE,
        country=data.country,
        currency=data.currency,
        timezone=data.timezone,
        settlement_iban=iban,
        settlement_bic=bic,
        created_at=uow.clock.now(),
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(partner)
    except IntegrityError:  # another insurer registered meanwhile: the unique index decided
        _one_insurer(uow, data.currency)
        raise
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="partner.created",
        object_type="partner",
        object_id=partner.public_id,
        after=audit.snapshot(partner),
    )
    uow.commit()
    return partner


def _one_insurer(uow: UnitOfWork, currency: str) -> None:
    existing = uow.session.scalars(
        select(Partner).where(
            Partner.kind == PartnerKind.INSURER,
            Partner.status == PartnerStatus.ACTIVE,
            Partner.currency == currency,
        )
    ).one_or_none()
    if existing is not None:
        raise Conflict(
            _(
                "%(name)s already underwrites device protection in %(currency)s; one insurer at a"
                " time.",
                name=existing.name,
                currency=currency,
            ),
            extra={"insurer_id": existing.public_id},
        )


def get_partner(uow: UnitOfWork, public_id: str, *, field: str | None = None) -> Partner:
    """The partner; unknown → 404, or a 422 on `field` when the id came in a request body."""
    partner = uow.session.scalars(
        select(Partner).where(Partner.public_id == public_id)
    ).one_or_none()
    if partner is None:
        if field is not None:
            raise invalid(field, _("no partner %(public_id)r", public_id=public_id))
        raise NotFound(_("No partner %(public_id)r here.", public_id=public_id))
    return partner


def partner_public_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = uow.session.execute(select(Partner.id, Partner.public_id).where(Partner.id.in_(ids)))
    return {row.id: row.public_id for row in rows}


def partner_names(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    """The partners' names by internal id, for lists that show whose a row is."""
    if not ids:
        return {}
    rows = uow.session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids)))
    return {row.id: row.name for row in rows}
