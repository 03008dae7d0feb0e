"""Alliance use cases: taxonomy, circles, merchants, admission and seats, membership, relationships."""

from __future__ import annotations

from sqlalchemy import select

from beyondbank.alliance.models import Merchant
from beyondbank.core.authz import Principal, ensure_visible
from beyondbank.core.errors import FieldError, NotFound
from beyondbank.core.uow import UnitOfWork

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


def merchant_public_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = uow.session.execute(select(Merchant.id, Merchant.public_id).where(Merchant.id.in_(ids)))
    return {row.id: row.public_id for row in rows}
