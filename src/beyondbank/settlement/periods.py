"""Settlement periods: opened as they come due, closed once into a statement and a posting.

`open → closing → closed`, an explicit transition table. Closing is two transactions:

1. **Claim** (short, its own transaction): a conditional UPDATE moves the period from `open` to
   `closing` with a fresh token, only once the period has ended and every earlier period of the
   contract is closed. A `closing` period whose closer died is taken over once its lease has run
   out. Anyone else finds it `closing` (409, naming the state) or, once it is done, `closed`.
2. **Settle**: mark the transactions the period settles (its own, and any posted late into an
   earlier period after that closed: each transaction is settled once, ever), compute the
   statement, post the settlement transaction (idempotency key `settlement:<period id>`), store
   the statement, and move `closing → closed` only while still holding the token. All of it
   commits together or not at all; a failure hands the period back to `open`.

Closing a closed period reads the stored statement and writes nothing: the same bytes, no new
postings.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, Forbidden, InvalidTransition, NotFound
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.settlement import contracts, exports, pools, schedule, sources, statements
from beyondbank.settlement.models import (
    CommissionContract,
    ContractVersion,
    PeriodStatus,
    SettlementPeriod,
    SettlementStatement,
)

# How long a closer may hold a `closing` period before another may take it over.
CLOSING_LEASE = timedelta(minutes=15)

S = PeriodStatus


class PeriodAction(StrEnum):
    CLOSE = "close"  # claim the period for closing
    TAKE_OVER = "take_over"  # claim a closing period whose closer's lease ran out
    FINISH = "finish"  # the statement is stored and posted
    RELEASE = "release"  # the closer failed: back to open


A = PeriodAction
TRANSITIONS: dict[tuple[PeriodStatus, PeriodAction], PeriodStatus] = {
    (S.OPEN, A.CLOSE): S.CLOSING,
    (S.CLOSING, A.TAKE_OVER): S.CLOSING,
    (S.CLOSING, A.FINISH): S.CLOSED,
    (S.CLOSING, A.RELEASE): S.OPEN,
}


def next_status(current: PeriodStatus, action: PeriodAction) -> PeriodStatus:
    """The state after `action`, or 409 naming the current state."""
    target = TRANSITIONS.get((current, action))
    if target is None:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == current)
        hint = (
            " "
            + _(
                "From %(status)s only: %(allowed)s.",
                status=current.value,
                allowed=", ".join(allowed),
            )
            if allowed
            else ""
        )
        raise InvalidTransition(
            _(
                "Cannot %(action)s a period that is %(current)s.%(hint)s",
                action=action.value.replace("_", " "),
                current=current.value,
                hint=hint,
            ),
            extra={"current_status": current.value},
        )
    return target


def _from_states(action: PeriodAction) -> list[PeriodStatus]:
    return [s for (s, a) in TRANSITIONS if a is action]


# -- reads ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodFilters:
    contract_id: str | None = None
    party_id: str | None = None
    status: PeriodStatus | None = None
    currency: str | None = None
    ends_after: datetime | None = None
    ends_before: datetime | None = None


def get_period(uow: UnitOfWork, actor: Principal, public_id: str) -> SettlementPeriod:
    period = _by_public_id(uow, public_id)
    contract = uow.session.get_one(CommissionContract, period.contract_id)
    if actor.merchant_id is not None and actor.merchant_id != contract.merchant_id:
        raise NotFound(_("No period %(public_id)r here.", public_id=public_id))
    if actor.partner_id is not None:  # a partner's own contract only: else a 404 like the above
        try:
            contracts.get_contract(uow, actor, contract.public_id)
        except NotFound:
            raise NotFound(_("No period %(public_id)r here.", public_id=public_id)) from None
    return period


def _by_public_id(uow: UnitOfWork, public_id: str) -> SettlementPeriod:
    period = uow.session.scalars(
        select(SettlementPeriod).where(SettlementPeriod.public_id == public_id)
    ).one_or_none()
    if period is None:
        raise NotFound(_("No period %(public_id)r here.", public_id=public_id))
    return period


def list_periods(
    uow: UnitOfWork,
    actor: Principal,
    filters: PeriodFilters,
    *,
    cursor: str | None = None,
    limit: int,
) -> tuple[Sequence[SettlementPeriod], str | None]:
    visible = contracts.visible_contracts(actor)
    if filters.contract_id is not None:
        contract = contracts.get_contract(
            uow, actor, filters.contract_id, field="query.contract_id"
        )
        visible = visible.where(CommissionContract.id == contract.id)
    if filters.party_id is not None:
        visible = visible.where(CommissionContract.party_ref == filters.party_id)
    if filters.currency is not None:
        visible = visible.where(CommissionContract.currency == filters.currency)
    stmt: Select[SettlementPeriod] = select(SettlementPeriod).where(
        SettlementPeriod.contract_id.in_(visible.with_only_columns(CommissionContract.id))
    )
    if filters.status is not None:
        stmt = stmt.where(SettlementPeriod.status == filters.status)
    if filters.ends_after is not None:
        stmt = stmt.where(SettlementPeriod.end_at > filters.ends_after)
    if filters.ends_before is not None:
        stmt = stmt.where(SettlementPeriod.end_at <= filters.ends_before)
    return paginate(uow.session, stmt, SettlementPeriod.id, cursor=cursor, limit=limit)


def statement_of(uow: UnitOfWork, period: SettlementPeriod) -> SettlementStatement:
    found = uow.session.scalars(
        select(SettlementStatement).where(SettlementStatement.period_id == period.id)
    ).one_or_none()
    if found is None:
        raise InvalidTransition(
            _(
                "Period %(public_id)s is %(status)s: its statement exists once it is closed.",
                public_id=period.public_id,
                status=period.status.value,
            ),
            extra={"current_status": period.status.value},
        )
    return found


@dataclass(frozen=True, slots=True)
class StatementFile:
    """A closed period's statement as a file to download."""

    filename: str
    media_type: str
    body: bytes


def statement_file(
    uow: UnitOfWork, actor: Principal, period_id: str, file_format: str, *, bank_name: str
) -> StatementFile:
    """The statement of a period the actor may read, as CSV or PDF (`file_format`)."""
    period = get_period(uow, actor, period_id)
    statement = statement_of(uow, period)
    content: dict[str, Any] = json.loads(statement.content)
    name = f"statement-{period.public_id}.{file_format}"
    if file_format == "csv":
        body = exports.statement_csv(statement.public_id, statement.sha256, content)
        return StatementFile(name, "text/csv; charset=utf-8", body)
    if file_format == "pdf":
        body = exports.statement_pdf(
            statement.public_id, statement.sha256, content, bank_name=bank_name
        )
        return StatementFile(name, "application/pdf", body)
    raise ValueError(f"no statement file format {file_format!r}")


def statement_ids(uow: UnitOfWork, period_ids: set[int]) -> dict[int, str]:
    if not period_ids:
        return {}
    rows = uow.session.execute(
        select(SettlementStatement.period_id, SettlementStatement.public_id).where(
            SettlementStatement.period_id.in_(period_ids)
        )
    )
    return {period_id: public_id for period_id, public_id in rows}


# -- opening --------------------------------------------------------------------------------------


def open_due(
    uow: UnitOfWork, actor: Principal, *, contract_id: str | None = None
) -> list[SettlementPeriod]:
    """Create every period that has started by now and does not exist yet, for one contract or
    all of them. Safe to run concurrently and repeatedly: a period is created once."""
    if actor.merchant_id is not None:
        raise Forbidden(_("Periods are opened by the bank."))
    if contract_id is not None:
        targets = [contracts.get_contract(uow, actor, contract_id, field="body.contract_id")]
    else:
        targets = list(
            uow.session.scalars(select(CommissionContract).order_by(CommissionContract.id))
        )
    now = uow.clock.now()
    created: list[SettlementPeriod] = []
    for contract in targets:
        created.extend(_open_for(uow, contract, now))
    if created:
        audit.record(
            uow.session,
            actor=actor,
            at=now,
            action="settlement.periods.opened",
            object_type="settlement_contract",
            object_id=contract_id or "*",
            after={"periods": [p.public_id for p in created]},
        )
    uow.commit()
    return created


def _open_for(
    uow: UnitOfWork, contract: CommissionContract, now: datetime
) -> list[SettlementPeriod]:
    session = uow.session
    last = session.scalars(
        select(SettlementPeriod)
        .where(SettlementPeriod.contract_id == contract.id)
        .order_by(SettlementPeriod.sequence.desc())
        .limit(1)
    ).one_or_none()
    plan = contracts.schedule_of(contract)
    due = schedule.periods_until(plan, last.ends_on if last else None, now)
    sequence = last.sequence if last else 0
    created_ids = []
    for starts_on, ends_on in due:
        sequence += 1
        values = {
            "public_id": new_public_id("stp"),
            "contract_id": contract.id,
            "sequence": sequence,
            "starts_on": starts_on,
            "ends_on": ends_on,
            "start_at": schedule.local_midnight(starts_on, contract.timezone),
            "end_at": schedule.local_midnight(ends_on, contract.timezone),
            "status": PeriodStatus.OPEN,
        }
        inserted = session.execute(_insert_ignoring_conflict(uow, values)).scalar_one_or_none()
        if inserted is not None:
            created_ids.append(inserted)
    if not created_ids:
        return []
    return list(
        session.scalars(
            select(SettlementPeriod)
            .where(SettlementPeriod.id.in_(created_ids))
            .order_by(SettlementPeriod.sequence)
        )
    )


def _insert_ignoring_conflict(uow: UnitOfWork, values: dict[str, object]) -> Any:
    dialect = uow.session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SettlementPeriod)
    return (
        stmt.values(**values)
        .on_conflict_do_nothing(index_elements=["contract_id", "starts_on"])
        .returning(SettlementPeriod.id)
    )


# -- closing --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Closed:
    period: SettlementPeriod
    statement: SettlementStatement
    created: bool  # False: it was closed already; nothing was written


def close(uow: UnitOfWork, actor: Principal, public_id: str) -> Closed:
    """Close a period once: the statement and its posting; again, the stored statement.

    The claim runs in a transaction of its own before this unit of work reads anything, so the
    caller must not have started one (on SQLite the claim would otherwise wait for it)."""
    if actor.merchant_id is not None:
        raise Forbidden(_("Periods are closed by the bank."))
    token = secrets.token_hex(16)
    claimed = _claim(uow, actor, public_id, token)
    period = uow.session.scalars(
        select(SettlementPeriod)
        .where(SettlementPeriod.public_id == public_id)
        .execution_options(populate_existing=True)
    ).one()
    if not claimed:
        return Closed(period, statement_of(uow, period), created=False)
    try:
        statement = _settle(uow, actor, period, token)
        uow.commit()
    except BaseException:
        uow.rollback()
        _release(uow, period.id, token)
        raise
    return Closed(period, statement, created=True)


def _claim(uow: UnitOfWork, actor: Principal, public_id: str, token: str) -> bool:
    """True when this closer now holds the period; False when it is already closed."""
    with uow.fresh() as own:
        session = own.session
        period = _by_public_id(own, public_id)
        if period.status is S.CLOSED:
            return False
        # The contract's lock first: a new version and a close never interleave.
        session.execute(
            select(CommissionContract.id)
            .where(CommissionContract.id == period.contract_id)
            .with_for_update()
        )
        now = own.clock.now()
        earlier = aliased(SettlementPeriod)
        unclosed_before = (
            select(earlier.public_id)
            .where(
                earlier.contract_id == period.contract_id,
                earlier.sequence < period.sequence,
                earlier.status != S.CLOSED,
            )
            .order_by(earlier.sequence)
            .limit(1)
        )
        claimed = session.execute(
            update(SettlementPeriod)
            .where(
                SettlementPeriod.id == period.id,
                SettlementPeriod.end_at <= now,
                ~unclosed_before.exists(),
                or_(
                    SettlementPeriod.status.in_(_from_states(A.CLOSE)),
                    (SettlementPeriod.status.in_(_from_states(A.TAKE_OVER)))
                    & (SettlementPeriod.closing_started_at < now - CLOSING_LEASE),
                ),
            )
            .values(
                status=next_status(S.OPEN, A.CLOSE),
                closing_token=token,
                closing_started_at=now,
                closing_by=actor.public_id,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            own.commit()
            return True
        status = session.scalar(
            select(SettlementPeriod.status).where(SettlementPeriod.id == period.id)
        )
        if status is S.CLOSED:
            return False
        if status is S.OPEN and period.end_at > now:
            raise Conflict(
                _(
                    "Period %(public_id)s runs until %(end_at)s: it can be "
                    "closed once it has ended.",
                    public_id=period.public_id,
                    end_at=period.end_at.isoformat(),
                ),
                extra={"current_status": S.OPEN.value, "ends_at": period.end_at.isoformat()},
            )
        if status is S.OPEN:
            blocker = session.scalar(unclosed_before)
            raise Conflict(
                _(
                    "Period %(blocker)s comes first: a contract's periods close in order, so that "
                    "each statement settles what the one before left.",
                    blocker=blocker,
                ),
                extra={"current_status": S.OPEN.value, "close_first": blocker},
            )
        next_status(S.CLOSING, A.CLOSE)  # closing, its lease running: 409 naming it
        raise AssertionError("unreachable")


def _release(uow: UnitOfWork, period_id: int, token: str) -> None:
    with uow.fresh() as own:
        own.session.execute(
            update(SettlementPeriod)
            .where(
                SettlementPeriod.id == period_id,
                SettlementPeriod.status.in_(_from_states(A.RELEASE)),
                SettlementPeriod.closing_token == token,
            )
            .values(
                status=next_status(S.CLOSING, A.RELEASE),
                closing_token=None,
                closing_started_at=None,
                closing_by=None,
            )
        )
        own.commit()


def _settle(
    uow: UnitOfWork, actor: Principal, period: SettlementPeriod, token: str
) -> SettlementStatement:
    session = uow.session
    contract = session.get_one(CommissionContract, period.contract_id)
    version = contracts.version_in_force(uow, contract, period.starts_on)
    computed = compute_statement(uow, contract, period, version)
    now = uow.clock.now()
    transaction_ref = _post(uow, actor, contract, period, computed, now)
    content = {
        **computed.content,
        "period": period_header(contract, period),
        "settlement": {
            "transaction_id": transaction_ref,
            "closed_at": now.isoformat(),
            "closed_by": actor.public_id,
        },
    }
    text = statements.canonical(content)
    statement = SettlementStatement(
        public_id=new_public_id("stm"),
        period_id=period.id,
        currency=contract.currency,
        content=text,
        sha256=statements.digest(text),
        transaction_ref=transaction_ref,
        created_at=now,
    )
    session.add(statement)
    session.flush()
    finished = session.execute(
        update(SettlementPeriod)
        .where(
            SettlementPeriod.id == period.id,
            SettlementPeriod.status.in_(_from_states(A.FINISH)),
            SettlementPeriod.closing_token == token,
        )
        .values(
            status=next_status(S.CLOSING, A.FINISH),
            closing_token=None,
            closed_at=now,
            closed_by=actor.public_id,
            version_id=version.id,
            net_minor=computed.net_minor,
        )
        .execution_options(synchronize_session=False)
    )
    if finished.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            _(
                "Period %(public_id)s was taken over by another closer after this one's lease "
                "ran out; read it again.",
                public_id=period.public_id,
            ),
            extra={"current_status": S.CLOSING.value},
        )
    session.refresh(period)
    audit.record(
        session,
        actor=actor,
        at=now,
        action="settlement.period.closed",
        object_type="settlement_period",
        object_id=period.public_id,
        before={"status": S.CLOSING.value},
        after={
            "status": S.CLOSED.value,
            "statement": statement.public_id,
            "sha256": statement.sha256,
            "net_minor": computed.net_minor,
            "transaction": transaction_ref,
        },
    )
    return statement


def period_header(contract: CommissionContract, period: SettlementPeriod) -> dict[str, object]:
    return {
        "id": period.public_id,
        "sequence": period.sequence,
        "contract_id": contract.public_id,
        "party_kind": contract.party_kind.value,
        "party_id": contract.party_ref,
        "party_name": contract.party_name,
        "frequency": contract.frequency.value,
        "timezone": contract.timezone,
        "starts_on": period.starts_on.isoformat(),
        "ends_on": period.ends_on.isoformat(),
        "start_at": period.start_at.isoformat(),
        "end_at": period.end_at.isoformat(),
    }


def compute_statement(
    uow: UnitOfWork,
    contract: CommissionContract,
    period: SettlementPeriod,
    version: ContractVersion,
) -> statements.Computed:
    """Mark the transactions the period settles, gather its figures from the ledger, and
    compute the statement."""
    payable = contracts.payable_account(uow, contract)
    receivable = contracts.receivable_account(uow, contract)
    start, end = period.start_at, period.end_at
    sources.settle_items(
        uow,
        period_id=period.id,
        party_ref=contract.party_ref,
        currency=contract.currency,
        since=schedule.local_midnight(contract.starts_on, contract.timezone),
        end=end,
    )
    activity, late = sources.activity(
        uow, period_id=period.id, payable_id=payable.id, receivable_id=receivable.id, start=start
    )
    newcomers = sources.new_customers(
        uow, party_ref=contract.party_ref, currency=contract.currency, start=start, end=end
    )
    inputs = statements.Inputs(
        currency=contract.currency,
        terms=terms_for(contract, version, period.starts_on, period.ends_on),
        activity=activity,
        new_customers=newcomers,
        pools=tuple(_pool_figures(uow, contract, start, end)),
        late_count=late.count,
        late_minor=late.amount_minor,
    )
    return statements.compute(inputs)


def terms_for(
    contract: CommissionContract, version: ContractVersion, starts_on: date, ends_on: date
) -> statements.Terms:
    plan = contracts.schedule_of(contract)
    tiers = tuple(
        statements.Tier(int(t["from_minor"]), int(t["bonus_bps"])) for t in version.sales_tiers
    )
    return statements.Terms(
        version_id=version.public_id,
        version=version.version,
        effective_from=version.effective_from.isoformat(),
        base_share_bps=version.base_share_bps,
        category_overrides={str(k): int(v) for k, v in version.category_overrides.items()},
        tiers=tiers,
        tier_thresholds=tuple(
            schedule.period_share(t.from_minor, plan, starts_on, ends_on) for t in tiers
        ),
        new_customer_fee_minor=version.new_customer_fee_minor,
        minimum_monthly_fee_minor=version.minimum_monthly_fee_minor,
        minimum_fee_minor=schedule.period_share(
            version.minimum_monthly_fee_minor, plan, starts_on, ends_on
        ),
    )


def _pool_figures(
    uow: UnitOfWork, contract: CommissionContract, start: datetime, end: datetime
) -> list[statements.PoolFigures]:
    figures = []
    for pool in pools.pools_of(uow, contract):
        moved = ledger.statement(uow, pools.account_of(uow, pool), start, end)
        party, bank, drawn = sources.pool_movements(
            uow, pool_ref=pool.public_id, start=start, end=end
        )
        figures.append(
            statements.PoolFigures(
                pool_id=pool.public_id,
                name=pool.name,
                opening_minor=moved.opening.amount,
                party_contributions_minor=party,
                bank_contributions_minor=bank,
                draws_minor=drawn,
                closing_minor=moved.closing.amount,
            )
        )
    return figures


def _post(
    uow: UnitOfWork,
    actor: Principal,
    contract: CommissionContract,
    period: SettlementPeriod,
    computed: statements.Computed,
    now: datetime,
) -> str | None:
    """The settlement transaction: charges to revenue, and the period's result on one account."""
    if not computed.legs:
        return None
    currency = contract.currency
    accounts = {
        "payable": contracts.payable_account(uow, contract),
        "receivable": contracts.receivable_account(uow, contract),
        "commission_revenue": chart.commission_revenue(uow, currency),
        "fee_revenue": chart.fee_revenue(uow, currency),
    }
    legs = tuple(
        ledger.Leg.debit(accounts[role], Money(amount, currency))
        if amount > 0
        else ledger.Leg.credit(accounts[role], Money(-amount, currency))
        for role, amount in sorted(computed.legs.items())
    )
    totals = computed.content["totals"]
    posted = ledger.post(
        uow,
        ledger.Draft(
            key=f"settlement:{period.public_id}",
            kind=chart.Kind.SETTLEMENT.value,
            legs=legs,
            description=(
                f"Settlement {period.starts_on.isoformat()}..{period.ends_on.isoformat()} "
                f"for {contract.party_name}"
            ),
            effective_at=now,
            counterparty=contract.party_ref,
            reference=period.public_id,
            details={
                "commission_minor": computed.commission_minor,
                "fees_minor": computed.fees_minor,
                "net_minor": computed.net_minor,
                "charges_minor": totals["charges_minor"],
            },
        ),
        actor=actor,
    )
    return posted.transaction.public_id
