"""Commission contracts: who the bank settles with, and versioned terms that never rewrite history.

A contract is created with its first version, effective from the contract's start. A new version
is effective from a later date than the latest; the version in force for a period is the latest
one effective on the period's first day. Versions are insert-only (the database refuses updates
and deletes), and a version may not take effect on or before the first day of a period that is
closing or closed: that period's terms are settled history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import service as alliance
from beyondbank.commerce import service as commerce
from beyondbank.commerce.models import Partner
from beyondbank.core import audit
from beyondbank.core.authz import SYSTEM, Principal, ensure_visible
from beyondbank.core.errors import Conflict, FieldError, Forbidden, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger.models import Account, OwnerKind
from beyondbank.settlement.models import (
    CommissionContract,
    ContractVersion,
    PartyKind,
    PeriodStatus,
    SettlementPeriod,
)
from beyondbank.settlement.schedule import Schedule
from beyondbank.settlement.schemas import ContractIn, TermsIn, VersionIn


@dataclass(frozen=True, slots=True)
class Party:
    """A merchant or partner as settlement sees it: names, defaults and where to pay it."""

    kind: PartyKind
    ref: str
    name: str
    merchant_id: int | None
    currency: str | None
    timezone: str
    iban: str | None
    bic: str | None
    account_name: str


def find_party(
    uow: UnitOfWork, actor: Principal, kind: PartyKind, ref: str, *, field: str | None = None
) -> Party:
    """The merchant (through the alliance's service) or the partner, if the actor may see it."""
    if kind is PartyKind.MERCHANT:
        merchant = alliance.get_merchant(uow, actor, ref, field=field)
        return Party(
            kind=kind,
            ref=merchant.public_id,
            name=merchant.trading_name,
            merchant_id=merchant.id,
            currency=None,
            timezone=merchant.timezone,
            iban=merchant.settlement_iban,
            bic=merchant.settlement_bic,
            account_name=merchant.settlement_account_name or merchant.legal_name,
        )
    try:
        partner = commerce.get_partner(uow, ref)
    except NotFound:
        partner = None
    if partner is None or actor.merchant_id is not None:
        errors = (FieldError(field, _("no such partner")),) if field else ()
        raise NotFound(_("No partner %(ref)r here.", ref=ref), errors=errors)
    return Party(
        kind=kind,
        ref=partner.public_id,
        name=partner.name,
        merchant_id=None,
        currency=partner.currency,
        timezone=partner.timezone,
        iban=partner.settlement_iban,
        bic=partner.settlement_bic,
        account_name=partner.legal_name,
    )


def party_of(uow: UnitOfWork, contract: CommissionContract) -> Party:
    return find_party(uow, SYSTEM, contract.party_kind, contract.party_ref)


def schedule_of(contract: CommissionContract) -> Schedule:
    return Schedule(
        starts_on=contract.starts_on,
        frequency=contract.frequency,
        period_days=contract.period_days,
        timezone=contract.timezone,
    )


def owner_kind(contract: CommissionContract) -> OwnerKind:
    return OwnerKind(contract.party_kind.value)


def payable_account(uow: UnitOfWork, contract: CommissionContract) -> Account:
    return chart.payable(uow, owner_kind(contract), contract.party_ref, contract.currency)


def receivable_account(uow: UnitOfWork, contract: CommissionContract) -> Account:
    return chart.receivable(uow, owner_kind(contract), contract.party_ref, contract.currency)


# -- reads ----------------------------------------------------------------------------------------


def get_contract(
    uow: UnitOfWork, actor: Principal, public_id: str, *, field: str | None = None
) -> CommissionContract:
    """A contract the actor may see; another merchant's answers 404 like a missing one."""
    contract = uow.session.scalars(
        select(CommissionContract).where(CommissionContract.public_id == public_id)
    ).one_or_none()
    if contract is None:
        errors = (FieldError(field, _("no such contract")),) if field else ()
        raise NotFound(_("No contract %(public_id)r here.", public_id=public_id), errors=errors)
    if actor.partner_id is not None:
        if not _partners_own(uow, actor, contract):
            raise NotFound(_("No contract %(public_id)r here.", public_id=public_id))
    else:
        ensure_visible(actor, contract.merchant_id, "contract", public_id)
    return contract


def _partners_own(uow: UnitOfWork, actor: Principal, contract: CommissionContract) -> bool:
    own = commerce.partner_public_ids(uow, {actor.partner_id} if actor.partner_id else set())
    return contract.party_kind is PartyKind.PARTNER and contract.party_ref in own.values()


def visible_contracts(actor: Principal) -> Select[CommissionContract]:
    """The contracts the actor may see: a merchant's or a partner's own, the bank's staff all."""
    stmt = select(CommissionContract)
    if actor.merchant_id is not None:
        stmt = stmt.where(CommissionContract.merchant_id == actor.merchant_id)
    if actor.partner_id is not None:
        stmt = stmt.where(
            CommissionContract.party_kind == PartyKind.PARTNER,
            CommissionContract.party_ref.in_(
                select(Partner.public_id).where(Partner.id == actor.partner_id)
            ),
        )
    return stmt


def list_contracts(
    uow: UnitOfWork,
    actor: Principal,
    *,
    party_id: str | None = None,
    party_kind: PartyKind | None = None,
    cursor: str | None = None,
    limit: int,
) -> tuple[Sequence[CommissionContract], str | None]:
    stmt = visible_contracts(actor)
    if party_id is not None:
        stmt = stmt.where(CommissionContract.party_ref == party_id)
    if party_kind is not None:
        stmt = stmt.where(CommissionContract.party_kind == party_kind)
    return paginate(uow.session, stmt, CommissionContract.id, cursor=cursor, limit=limit)


def contracts_by_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, CommissionContract]:
    if not ids:
        return {}
    rows = uow.session.scalars(select(CommissionContract).where(CommissionContract.id.in_(ids)))
    return {c.id: c for c in rows}


def version_in_force(uow: UnitOfWork, contract: CommissionContract, day: date) -> ContractVersion:
    """The latest version effective on `day`; before the contract starts, the first."""
    version = uow.session.scalars(
        select(ContractVersion)
        .where(ContractVersion.contract_id == contract.id, ContractVersion.effective_from <= day)
        .order_by(ContractVersion.effective_from.desc())
        .limit(1)
    ).one_or_none()
    if version is None:
        version = uow.session.scalars(
            select(ContractVersion)
            .where(ContractVersion.contract_id == contract.id)
            .order_by(ContractVersion.version)
            .limit(1)
        ).one()
    return version


# -- writes ---------------------------------------------------------------------------------------


def _refuse_org_bound(actor: Principal) -> None:
    if actor.merchant_id is not None:
        raise Forbidden(_("Contracts are set by the bank."))


def create_contract(
    uow: UnitOfWork, actor: Principal, data: ContractIn, *, default_currency: str
) -> CommissionContract:
    """A contract for a merchant or partner with its first version, effective from its start."""
    _refuse_org_bound(actor)
    party = find_party(uow, actor, data.party_kind, data.party_id, field="body.party_id")
    now = uow.clock.now()
    contract = CommissionContract(
        public_id=new_public_id("ctr"),
        party_kind=party.kind,
        party_ref=party.ref,
        party_name=party.name,
        merchant_id=party.merchant_id,
        currency=data.currency or party.currency or default_currency,
        frequency=data.frequency,
        period_days=data.period_days,
        timezone=data.timezone or party.timezone,
        starts_on=data.starts_on,
        created_at=now,
        created_by=actor.public_id,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(contract)
            uow.session.flush()
    except IntegrityError:
        raise Conflict(
            _(
                "%(name)s already has a contract in %(currency)s: add a version to it.",
                name=party.name,
                currency=contract.currency,
            ),
        ) from None
    version = _insert_version(uow, actor, contract, 1, data.starts_on, data)
    # The party's accounts exist from the start, so statements and payouts always find them.
    payable_account(uow, contract)
    receivable_account(uow, contract)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="settlement.contract.created",
        object_type="settlement_contract",
        object_id=contract.public_id,
        after={**_snapshot(contract), "version": _version_snapshot(version)},
    )
    uow.commit()
    uow.session.refresh(contract)
    return contract


def add_version(
    uow: UnitOfWork, actor: Principal, contract: CommissionContract, data: VersionIn
) -> ContractVersion:
    """A new version, effective after the latest and after every settled period's start."""
    _refuse_org_bound(actor)
    session = uow.session
    # One writer of a contract's versions at a time; closers take the same lock first.
    session.execute(
        select(CommissionContract.id).where(CommissionContract.id == contract.id).with_for_update()
    )
    latest = session.scalars(
        select(ContractVersion)
        .where(ContractVersion.contract_id == contract.id)
        .order_by(ContractVersion.version.desc())
        .limit(1)
    ).one()
    if data.effective_from <= latest.effective_from:
        raise invalid(
            "body.effective_from",
            _(
                "must be after %(effective_from)s, when version %(version)s "
                "took effect: a new version never rewrites history",
                effective_from=latest.effective_from.isoformat(),
                version=latest.version,
            ),
        )
    settled = session.scalars(
        select(SettlementPeriod)
        .where(
            SettlementPeriod.contract_id == contract.id,
            SettlementPeriod.status != PeriodStatus.OPEN,
            SettlementPeriod.starts_on >= data.effective_from,
        )
        .order_by(SettlementPeriod.starts_on.desc())
        .limit(1)
    ).one_or_none()
    if settled is not None:
        raise Conflict(
            _(
                "Period %(public_id)s (%(starts_on)s) is %(status)s"
                ": a version effective %(effective_from)s would change its terms. "
                "Make it effective after that period starts.",
                public_id=settled.public_id,
                starts_on=settled.starts_on.isoformat(),
                status=settled.status.value,
                effective_from=data.effective_from.isoformat(),
            ),
            extra={"period_id": settled.public_id, "current_status": settled.status.value},
        )
    version = _insert_version(uow, actor, contract, latest.version + 1, data.effective_from, data)
    audit.record(
        session,
        actor=actor,
        at=uow.clock.now(),
        action="settlement.contract.version_added",
        object_type="settlement_contract",
        object_id=contract.public_id,
        after=_version_snapshot(version),
    )
    uow.commit()
    session.refresh(contract)
    return version


def _insert_version(
    uow: UnitOfWork,
    actor: Principal,
    contract: CommissionContract,
    number: int,
    effective_from: date,
    terms: TermsIn,
) -> ContractVersion:
    version = ContractVersion(
        public_id=new_public_id("ctv"),
        contract_id=contract.id,
        version=number,
        effective_from=effective_from,
        base_share_bps=terms.base_share_bps,
        category_overrides=dict(sorted(terms.category_overrides.items())),
        sales_tiers=[t.model_dump() for t in terms.sales_tiers],
        new_customer_fee_minor=terms.new_customer_fee_minor,
        minimum_monthly_fee_minor=terms.minimum_monthly_fee_minor,
        pool_party_share_bps=terms.pool_party_share_bps,
        note=terms.note,
        created_at=uow.clock.now(),
        created_by=actor.public_id,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(version)
            uow.session.flush()
    except IntegrityError:
        raise Conflict(
            _(
                "Version %(number)s of contract %(public_id)s was just added by someone else: "
                "read the contract again.",
                number=number,
                public_id=contract.public_id,
            ),
        ) from None
    return version


def _snapshot(contract: CommissionContract) -> dict[str, Any]:
    return audit.snapshot(
        contract,
        (
            "party_kind",
            "party_ref",
            "currency",
            "frequency",
            "period_days",
            "timezone",
            "starts_on",
        ),
    )


def _version_snapshot(version: ContractVersion) -> dict[str, Any]:
    return audit.snapshot(
        version,
        (
            "public_id",
            "version",
            "effective_from",
            "base_share_bps",
            "category_overrides",
            "sales_tiers",
            "new_customer_fee_minor",
            "minimum_monthly_fee_minor",
            "pool_party_share_bps",
        ),
    )
