"""Marketing co-funding pools: both sides contribute, campaigns draw, never below zero.

A pool's money is a ledger account (`chart.pool`, floor 0). A contribution credits it: the
party's part is debited to the party's receivable (it is on the party's next statement), the
bank's part to the bank's benefit expense. A joint contribution is split by the pool share of
the contract version in force today: the party's part rounded down, the bank takes the remainder.
A campaign's draw debits the pool and credits the bank's benefit expense (the pool pays back
what the campaign spent). The database refuses a draw beyond the balance (409), however many
draw at once. Each contribution and draw carries the caller's idempotency key: the same key
and content answer with the original movement, the same key with other content is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, FieldError, Forbidden, NotFound
from beyondbank.core.i18n import _
from beyondbank.core.idempotency import check_key
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money, split_bps
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, LedgerTransaction
from beyondbank.settlement import contracts, schedule
from beyondbank.settlement.models import CommissionContract, Pool
from beyondbank.settlement.schemas import PoolIn

Side = Literal["joint", "party", "bank"]


@dataclass(frozen=True, slots=True)
class Movement:
    """A contribution or draw as posted (or, for a repeated key, as first posted)."""

    transaction: LedgerTransaction
    pool: Pool
    amount_minor: int
    party_minor: int
    bank_minor: int
    campaign_ref: str | None
    replayed: bool


def joint_split(amount_minor: int, party_share_bps: int) -> tuple[int, int]:
    """(the party's part, the bank's part) of a joint contribution: they sum to the amount; the
    party's part is rounded down and the bank takes the remainder."""
    return split_bps(amount_minor, party_share_bps)


# -- pools ----------------------------------------------------------------------------------------


def account_of(uow: UnitOfWork, pool: Pool) -> Account:
    return chart.pool(uow, pool.public_id, pool.currency)


def balance_minor(uow: UnitOfWork, pool: Pool) -> int:
    return ledger.balance(uow, account_of(uow, pool)).posted.amount


def contract_of(uow: UnitOfWork, pool: Pool) -> CommissionContract:
    return uow.session.get_one(CommissionContract, pool.contract_id)


def get_pool(uow: UnitOfWork, actor: Principal, public_id: str) -> Pool:
    pool = uow.session.scalars(select(Pool).where(Pool.public_id == public_id)).one_or_none()
    if pool is None:
        raise NotFound(_("No pool %(public_id)r here.", public_id=public_id))
    contract = contract_of(uow, pool)
    try:  # a merchant's or a partner's people: their own contract's pools only
        contracts.get_contract(uow, actor, contract.public_id)
    except NotFound:
        raise NotFound(_("No pool %(public_id)r here.", public_id=public_id)) from None
    return pool


def list_pools(
    uow: UnitOfWork,
    actor: Principal,
    *,
    contract_id: str | None = None,
    cursor: str | None = None,
    limit: int,
) -> tuple[Sequence[Pool], str | None]:
    stmt = select(Pool).where(
        Pool.contract_id.in_(
            contracts.visible_contracts(actor).with_only_columns(CommissionContract.id)
        )
    )
    if contract_id is not None:
        contract = contracts.get_contract(uow, actor, contract_id, field="query.contract_id")
        stmt = stmt.where(Pool.contract_id == contract.id)
    return paginate(uow.session, stmt, Pool.id, cursor=cursor, limit=limit)


def pools_of(uow: UnitOfWork, contract: CommissionContract) -> list[Pool]:
    return list(
        uow.session.scalars(
            select(Pool).where(Pool.contract_id == contract.id).order_by(Pool.public_id)
        )
    )


def create_pool(uow: UnitOfWork, actor: Principal, data: PoolIn) -> Pool:
    if actor.merchant_id is not None:
        raise Forbidden(_("Pools are set up by the bank."))
    contract = contracts.get_contract(uow, actor, data.contract_id, field="body.contract_id")
    now = uow.clock.now()
    pool = Pool(
        public_id=new_public_id("pol"),
        contract_id=contract.id,
        name=data.name,
        currency=contract.currency,
        created_at=now,
        created_by=actor.public_id,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(pool)
            uow.session.flush()
    except IntegrityError:
        raise Conflict(
            _(
                "Contract %(public_id)s already has a pool named %(name)r.",
                public_id=contract.public_id,
                name=data.name,
            ),
            errors=(FieldError("body.name", _("taken in this contract")),),
        ) from None
    account = account_of(uow, pool)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="settlement.pool.created",
        object_type="settlement_pool",
        object_id=pool.public_id,
        after={"contract": contract.public_id, "name": pool.name, "account": account.code},
    )
    uow.commit()
    return pool


# -- money in and out -----------------------------------------------------------------------------


def _ledger_key(pool: Pool, what: str, key: str) -> str:
    check_key(key)
    full = f"pool:{pool.public_id}:{what}:{key}"
    if len(full) <= ledger.MAX_KEY_LENGTH:
        return full
    return f"pool:{pool.public_id}:{what}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def contribute(
    uow: UnitOfWork,
    actor: Principal,
    pool: Pool,
    *,
    amount_minor: int,
    key: str,
    side: Side = "joint",
    description: str = "",
) -> Movement:
    """Money into the pool from the party, the bank, or both (split by the contract's share)."""
    contract = contract_of(uow, pool)
    today = schedule.local_date(uow.clock.now(), contract.timezone)
    if side == "joint":
        share = contracts.version_in_force(uow, contract, today).pool_party_share_bps
        party, bank = joint_split(amount_minor, share)
    else:
        party, bank = (amount_minor, 0) if side == "party" else (0, amount_minor)
    currency = pool.currency
    legs = [ledger.Leg.credit(account_of(uow, pool), Money(amount_minor, currency))]
    if party:
        receivable = contracts.receivable_account(uow, contract)
        legs.append(ledger.Leg.debit(receivable, Money(party, currency)))
    if bank:
        legs.append(ledger.Leg.debit(chart.benefit_expense(uow, currency), Money(bank, currency)))
    posted = ledger.post(
        uow,
        ledger.Draft(
            key=_ledger_key(pool, "contribution", key),
            kind=chart.Kind.POOL_CONTRIBUTION,
            legs=tuple(legs),
            description=description or f"Contribution to {pool.name}",
            counterparty=contract.party_ref,
            reference=pool.public_id,
            details={
                "side": side,
                "amount_minor": amount_minor,
                "party_minor": party,
                "bank_minor": bank,
            },
        ),
        actor=actor,
    )
    return _finish(uow, actor, pool, posted, "settlement.pool.contributed")


def draw(
    uow: UnitOfWork,
    actor: Principal,
    pool: Pool,
    *,
    amount_minor: int,
    key: str,
    campaign_ref: str,
    description: str = "",
) -> Movement:
    """A campaign's draw on the pool: refused (409) beyond the balance, by the database."""
    contract = contract_of(uow, pool)
    money = Money(amount_minor, pool.currency)
    posted = ledger.post(
        uow,
        ledger.Draft(
            key=_ledger_key(pool, "draw", key),
            kind=chart.Kind.POOL_DRAW,
            legs=(
                ledger.Leg.debit(account_of(uow, pool), money),
                ledger.Leg.credit(chart.benefit_expense(uow, pool.currency), money),
            ),
            description=description or f"Campaign {campaign_ref} draws on {pool.name}",
            counterparty=contract.party_ref,
            reference=pool.public_id,
            details={"amount_minor": amount_minor, "campaign_ref": campaign_ref},
        ),
        actor=actor,
    )
    return _finish(uow, actor, pool, posted, "settlement.pool.drawn")


def _finish(
    uow: UnitOfWork, actor: Principal, pool: Pool, posted: ledger.Posted, action: str
) -> Movement:
    movement = movement_of(pool, posted.transaction, replayed=not posted.created)
    if posted.created:
        audit.record(
            uow.session,
            actor=actor,
            at=uow.clock.now(),
            action=action,
            object_type="settlement_pool",
            object_id=pool.public_id,
            after={
                "transaction": posted.transaction.public_id,
                "amount_minor": movement.amount_minor,
                "party_minor": movement.party_minor,
                "bank_minor": movement.bank_minor,
                "campaign_ref": movement.campaign_ref,
            },
        )
        uow.commit()
    return movement


def movement_of(pool: Pool, transaction: LedgerTransaction, *, replayed: bool) -> Movement:
    details = transaction.details
    return Movement(
        transaction=transaction,
        pool=pool,
        amount_minor=int(details.get("amount_minor", 0)),
        party_minor=int(details.get("party_minor", 0)),
        bank_minor=int(details.get("bank_minor", 0)),
        campaign_ref=details.get("campaign_ref"),
        replayed=replayed,
    )
