"""Payout runs: pay every closed period with a net payable, once ever, in one credit-transfer file.

A run in one currency collects the closed periods whose net the bank owes and that no run has
paid. For each it checks the party's IBAN (and BIC, if any) with schwifty: a party without a
usable account is listed as an exception and stays due for a later run. Every other period gets
a paid line (a partial unique index: a period is paid once, whatever runs race) and its PAYOUT
posting: the party's payable debited, the bank's settlement cash credited. The pain.001 file is
rendered from the run's rows, so downloading it again gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from schwifty import BIC, IBAN
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from beyondbank.core import audit, idempotency
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.settlement import contracts, exports
from beyondbank.settlement.models import (
    CommissionContract,
    PayoutLine,
    PayoutLineStatus,
    PayoutRun,
    PeriodStatus,
    SettlementPeriod,
)

# The bank's own settlement account, when a run names none (the demo bank's, fictional).
DEFAULT_DEBTOR_IBAN = "GB18THHB40051512345678"
DEFAULT_DEBTOR_BIC = "THHBGB2L"


@dataclass(frozen=True, slots=True)
class Debtor:
    name: str
    iban: str
    bic: str


def check_debtor(name: str, iban: str, bic: str) -> Debtor:
    errors = []
    try:
        iban = IBAN(iban).compact
    except ValueError as exc:
        errors.append(FieldError("body.debtor.iban", str(exc)))
    try:
        bic = str(BIC(bic))
    except ValueError as exc:
        errors.append(FieldError("body.debtor.bic", str(exc)))
    if errors:
        raise InvalidInput(_("The bank's account for the payout is not usable."), errors=errors)
    return Debtor(name, iban, bic)


def creditor_account(iban: str | None, bic: str | None) -> tuple[str, str | None] | str:
    """(IBAN, BIC or None) ready for the file, or the reason the account cannot be paid."""
    if not iban:
        return "no settlement IBAN on file"
    try:
        checked = IBAN(iban)
    except ValueError as exc:
        return f"the settlement IBAN on file is not valid: {exc}"
    if bic:
        try:
            return checked.compact, str(BIC(bic))
        except ValueError as exc:
            return f"the settlement BIC on file is not valid: {exc}"
    found = checked.bic  # from schwifty's bank registry, when it knows the bank
    return checked.compact, str(found) if found is not None else None


# -- reads ----------------------------------------------------------------------------------------


def _staff_only(actor: Principal) -> None:
    if actor.is_org_bound:  # a merchant's or a partner's people
        raise Forbidden(_("Payout runs span every party: they are the bank's."))


def get_run(uow: UnitOfWork, actor: Principal, public_id: str) -> PayoutRun:
    _staff_only(actor)
    run = uow.session.scalars(
        select(PayoutRun).where(PayoutRun.public_id == public_id)
    ).one_or_none()
    if run is None:
        raise NotFound(_("No payout run %(public_id)r here.", public_id=public_id))
    return run


def list_runs(
    uow: UnitOfWork,
    actor: Principal,
    *,
    currency: str | None = None,
    cursor: str | None = None,
    limit: int,
) -> tuple[Sequence[PayoutRun], str | None]:
    _staff_only(actor)
    stmt = select(PayoutRun)
    if currency is not None:
        stmt = stmt.where(PayoutRun.currency == currency)
    return paginate(uow.session, stmt, PayoutRun.id, cursor=cursor, limit=limit, descending=True)


def paid_lines(run: PayoutRun) -> list[PayoutLine]:
    return [line for line in run.lines if line.status is PayoutLineStatus.PAID]


def period_refs(uow: UnitOfWork, lines: Sequence[PayoutLine]) -> dict[int, str]:
    ids = {line.period_id for line in lines}
    if not ids:
        return {}
    rows = uow.session.execute(
        select(SettlementPeriod.id, SettlementPeriod.public_id).where(SettlementPeriod.id.in_(ids))
    )
    return {pk: public_id for pk, public_id in rows}


def paid_runs(uow: UnitOfWork, period_ids: set[int]) -> dict[int, str]:
    """For each period paid out, the public id of the run that paid it."""
    if not period_ids:
        return {}
    rows = uow.session.execute(
        select(PayoutLine.period_id, PayoutRun.public_id)
        .join(PayoutRun, PayoutRun.id == PayoutLine.run_id)
        .where(PayoutLine.period_id.in_(period_ids), PayoutLine.status == PayoutLineStatus.PAID)
    )
    return {period_id: public_id for period_id, public_id in rows}


def pain001_of(uow: UnitOfWork, run: PayoutRun) -> bytes:
    """The run's credit-transfer file: counts and sums from its paid lines, validated."""
    lines = paid_lines(run)
    if not lines:
        raise Conflict(
            _(
                "Payout run %(public_id)s paid nothing (only exceptions): it has no file.",
                public_id=run.public_id,
            )
        )
    periods = period_refs(uow, lines)
    batch = exports.Batch(
        message_id=run.public_id,
        created_at=run.created_at,
        execution_date=run.execution_date,
        currency=run.currency,
        debtor_name=run.debtor_name,
        debtor_iban=run.debtor_iban,
        debtor_bic=run.debtor_bic,
        transfers=tuple(
            exports.Transfer(
                instruction_id=line.public_id,
                end_to_end_id=periods[line.period_id],
                amount_minor=line.amount_minor,
                creditor_name=line.creditor_name,
                creditor_iban=line.creditor_iban or "",
                creditor_bic=line.creditor_bic,
                remittance=f"Settlement {periods[line.period_id]}",
            )
            for line in lines
        ),
    )
    return exports.pain001(batch)


# -- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def create_run_once(
    uow: UnitOfWork,
    actor: Principal,
    *,
    currency: str,
    debtor: Debtor,
    execution_date: date | None,
    idempotency_key: str | None,
    fingerprint: str,
    lock_seconds: int,
    render: Callable[[PayoutRun], dict[str, Any]],
) -> Outcome:
    """`create_run` behind an optional `Idempotency-Key`: a retry gets the original answer."""
    if idempotency_key is None:
        run = create_run(
            uow, actor, currency=currency, debtor=debtor, execution_date=execution_date
        )
        return Outcome(201, render(run), replayed=False)
    _staff_only(actor)
    held = idempotency.claim(
        uow,
        scope=f"payout-runs:{actor.kind}:{actor.public_id}",
        key=idempotency_key,
        fingerprint=fingerprint,
        lock_seconds=lock_seconds,
    )
    if isinstance(held, idempotency.Replay):
        return Outcome(held.status_code, held.response, replayed=True)
    try:
        run = _make_run(uow, actor, currency=currency, debtor=debtor, execution_date=execution_date)
        body = render(run)
        held.complete(uow, 201, body)
        uow.commit()
    except BaseException:
        uow.rollback()
        idempotency.release(uow, held)
        raise
    return Outcome(201, body, replayed=False)


def create_run(
    uow: UnitOfWork,
    actor: Principal,
    *,
    currency: str,
    debtor: Debtor,
    execution_date: date | None = None,
) -> PayoutRun:
    run = _make_run(uow, actor, currency=currency, debtor=debtor, execution_date=execution_date)
    uow.commit()
    return run


def _due(uow: UnitOfWork, currency: str) -> list[tuple[SettlementPeriod, CommissionContract]]:
    already_paid = select(PayoutLine.period_id).where(PayoutLine.status == PayoutLineStatus.PAID)
    rows = uow.session.execute(
        select(SettlementPeriod, CommissionContract)
        .join(CommissionContract, CommissionContract.id == SettlementPeriod.contract_id)
        .where(
            CommissionContract.currency == currency,
            SettlementPeriod.status == PeriodStatus.CLOSED,
            SettlementPeriod.net_minor > 0,
            SettlementPeriod.id.not_in(already_paid),
        )
        .order_by(SettlementPeriod.end_at, SettlementPeriod.id)
    ).all()
    return [(period, contract) for period, contract in rows]


def _make_run(
    uow: UnitOfWork,
    actor: Principal,
    *,
    currency: str,
    debtor: Debtor,
    execution_date: date | None,
) -> PayoutRun:
    _staff_only(actor)
    session = uow.session
    now = uow.clock.now()
    due = _due(uow, currency)
    if not due:
        raise Conflict(
            _(
                "Nothing to pay in %(currency)s: every closed period owed is paid.",
                currency=currency,
            )
        )
    # One savepoint: a run that can pay nothing leaves nothing behind.
    with session.begin_nested():
        run, paid, exceptions = _fill_run(uow, actor, currency, debtor, execution_date, due)
        if paid == 0:
            if exceptions:
                detail = _(
                    "Nothing can be paid in %(currency)s: every period owed lacks a usable account.",
                    currency=currency,
                )
            else:
                detail = _(
                    "Nothing can be paid in %(currency)s: every period owed was just paid by "
                    "another run.",
                    currency=currency,
                )
            raise Conflict(
                detail,
                extra={"exceptions": exceptions},
            )
    session.refresh(run)
    audit.record(
        session,
        actor=actor,
        at=now,
        action="settlement.payout_run.created",
        object_type="settlement_payout_run",
        object_id=run.public_id,
        after={
            "currency": currency,
            "paid": paid,
            "exceptions": len(exceptions),
            "control_sum_minor": sum(line.amount_minor for line in paid_lines(run)),
        },
    )
    return run


def _fill_run(
    uow: UnitOfWork,
    actor: Principal,
    currency: str,
    debtor: Debtor,
    execution_date: date | None,
    due: list[tuple[SettlementPeriod, CommissionContract]],
) -> tuple[PayoutRun, int, list[dict[str, Any]]]:
    session = uow.session
    now = uow.clock.now()
    run = PayoutRun(
        public_id=new_public_id("pay"),
        currency=currency,
        execution_date=execution_date or now.date(),
        debtor_name=debtor.name[:140],
        debtor_iban=debtor.iban,
        debtor_bic=debtor.bic,
        created_at=now,
        created_by=actor.public_id,
    )
    session.add(run)
    session.flush()
    paid, exceptions = 0, []
    for period, contract in due:
        party = contracts.party_of(uow, contract)
        account = creditor_account(party.iban, party.bic)
        amount = period.net_minor or 0
        line = PayoutLine(
            public_id=new_public_id("pyl"),
            run_id=run.id,
            period_id=period.id,
            party_kind=contract.party_kind,
            party_ref=contract.party_ref,
            creditor_name=(party.account_name or party.name)[:140],
            amount_minor=amount,
        )
        if isinstance(account, str):
            line.status = PayoutLineStatus.EXCEPTION
            line.reason = account
            session.add(line)
            session.flush()
            exceptions.append(
                {"period_id": period.public_id, "party_id": contract.party_ref, "reason": account}
            )
            continue
        line.status = PayoutLineStatus.PAID
        line.creditor_iban, line.creditor_bic = account
        try:
            # The line first: a concurrent run paying the same period waits here, then skips it.
            with session.begin_nested():
                session.add(line)
                session.flush()
        except IntegrityError:
            continue
        money = Money(amount, currency)
        posted = ledger.post(
            uow,
            ledger.Draft(
                key=f"payout:{period.public_id}",
                kind=chart.Kind.PAYOUT.value,
                legs=(
                    ledger.Leg.debit(contracts.payable_account(uow, contract), money),
                    ledger.Leg.credit(chart.bank_cash(uow, currency), money),
                ),
                description=f"Payout of settlement {period.public_id} to {party.name}",
                effective_at=now,
                counterparty=contract.party_ref,
                reference=period.public_id,
                details={"run": run.public_id, "line": line.public_id},
            ),
            actor=actor,
        )
        line.transaction_ref = posted.transaction.public_id
        session.flush()
        paid += 1
    return run, paid, exceptions
