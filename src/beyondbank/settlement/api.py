"""Settlement endpoints: contracts, co-funding pools, periods and statements, payout runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import invalid
from beyondbank.core.http import attachment
from beyondbank.core.i18n import _
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import IdempotencyKey, SettingsDep, UoW, requires
from beyondbank.ledger.models import LedgerTransaction
from beyondbank.settlement import contracts, exports, payouts, periods, pools, schemas
from beyondbank.settlement.models import (
    CommissionContract,
    ContractVersion,
    PartyKind,
    PayoutRun,
    PeriodStatus,
    Pool,
    SettlementPeriod,
    SettlementStatement,
)

router = APIRouter(prefix="/settlement", tags=["settlement"])

Reader = Annotated[Principal, Depends(requires(Permission.SETTLEMENT_READ))]
Manager = Annotated[Principal, Depends(requires(Permission.SETTLEMENT_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such object, or another merchant's"},
    409: {"description": "Not allowed in the current state (names it), or a floor reached"},
    422: {"description": "Invalid fields, or an Idempotency-Key reused with another body"},
}


# -- contracts ------------------------------------------------------------------------------------


@router.post(
    "/contracts",
    response_model=schemas.ContractOut,
    status_code=201,
    summary="Create a commission contract with its first version",
    responses=_PROBLEMS,
)
def create_contract(
    body: schemas.ContractIn, uow: UoW, actor: Manager, settings: SettingsDep
) -> schemas.ContractOut:
    contract = contracts.create_contract(
        uow, actor, body, default_currency=settings.default_currency
    )
    return _contract_out(contract)


@router.get("/contracts", response_model=Page[schemas.ContractOut], summary="List contracts")
def list_contracts(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    party_id: str | None = None,
    party_kind: PartyKind | None = None,
) -> Page[schemas.ContractOut]:
    rows, next_cursor = contracts.list_contracts(
        uow, actor, party_id=party_id, party_kind=party_kind, cursor=cursor, limit=limit
    )
    return Page(items=[_contract_out(c) for c in rows], next_cursor=next_cursor)


@router.get("/contracts/{contract_id}", response_model=schemas.ContractOut, responses=_PROBLEMS)
def get_contract(contract_id: str, uow: UoW, actor: Reader) -> schemas.ContractOut:
    return _contract_out(contracts.get_contract(uow, actor, contract_id))


@router.post(
    "/contracts/{contract_id}/versions",
    response_model=schemas.ContractOut,
    status_code=201,
    summary="Add a version of the terms, effective from a later date (history never changes)",
    responses=_PROBLEMS,
)
def add_version(
    contract_id: str, body: schemas.VersionIn, uow: UoW, actor: Manager
) -> schemas.ContractOut:
    contract = contracts.get_contract(uow, actor, contract_id)
    contracts.add_version(uow, actor, contract, body)
    return _contract_out(contract)


# -- pools ----------------------------------------------------------------------------------------


@router.post(
    "/pools",
    response_model=schemas.PoolOut,
    status_code=201,
    summary="Create a marketing co-funding pool for a contract",
    responses=_PROBLEMS,
)
def create_pool(body: schemas.PoolIn, uow: UoW, actor: Manager) -> schemas.PoolOut:
    return _pool_out(uow, pools.create_pool(uow, actor, body))


@router.get("/pools", response_model=Page[schemas.PoolOut], summary="List co-funding pools")
def list_pools(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    contract_id: str | None = None,
) -> Page[schemas.PoolOut]:
    rows, next_cursor = pools.list_pools(
        uow, actor, contract_id=contract_id, cursor=cursor, limit=limit
    )
    return Page(items=[_pool_out(uow, p) for p in rows], next_cursor=next_cursor)


@router.get("/pools/{pool_id}", response_model=schemas.PoolOut, responses=_PROBLEMS)
def get_pool(pool_id: str, uow: UoW, actor: Reader) -> schemas.PoolOut:
    return _pool_out(uow, pools.get_pool(uow, actor, pool_id))


@router.post(
    "/pools/{pool_id}/contributions",
    response_model=schemas.PoolMovementOut,
    status_code=201,
    summary="Contribute to a pool (Idempotency-Key required)",
    responses=_PROBLEMS,
)
def contribute(
    pool_id: str,
    body: schemas.ContributionIn,
    uow: UoW,
    actor: Manager,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    key = _required_key(idempotency_key)
    pool = pools.get_pool(uow, actor, pool_id)
    movement = pools.contribute(
        uow,
        actor,
        pool,
        amount_minor=body.amount_minor,
        key=key,
        side=body.side,
        description=body.description,
    )
    return _movement_response(movement)


@router.post(
    "/pools/{pool_id}/draws",
    response_model=schemas.PoolMovementOut,
    status_code=201,
    summary="A campaign draws on a pool: refused beyond its balance (Idempotency-Key required)",
    responses=_PROBLEMS,
)
def draw(
    pool_id: str,
    body: schemas.DrawIn,
    uow: UoW,
    actor: Manager,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    key = _required_key(idempotency_key)
    pool = pools.get_pool(uow, actor, pool_id)
    movement = pools.draw(
        uow,
        actor,
        pool,
        amount_minor=body.amount_minor,
        key=key,
        campaign_ref=body.campaign_ref,
        description=body.description,
    )
    return _movement_response(movement)


def _required_key(key: str | None) -> str:
    if key is None:
        raise invalid(
            "header.Idempotency-Key", _("required: a unique key per movement, reused on retries")
        )
    return key


# -- periods and statements -----------------------------------------------------------------------


@router.get("/periods", response_model=Page[schemas.PeriodOut], summary="List settlement periods")
def list_periods(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    contract_id: str | None = None,
    party_id: str | None = None,
    status: PeriodStatus | None = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
    ends_after: datetime | None = None,
    ends_before: datetime | None = None,
) -> Page[schemas.PeriodOut]:
    filters = periods.PeriodFilters(
        contract_id=contract_id,
        party_id=party_id,
        status=status,
        currency=currency,
        ends_after=_aware(ends_after, "query.ends_after"),
        ends_before=_aware(ends_before, "query.ends_before"),
    )
    rows, next_cursor = periods.list_periods(uow, actor, filters, cursor=cursor, limit=limit)
    return Page(items=_periods_out(uow, rows), next_cursor=next_cursor)


@router.post(
    "/periods/open-due",
    response_model=list[schemas.PeriodOut],
    summary="Open every period that has started, for one contract or all",
    responses=_PROBLEMS,
)
def open_due(
    uow: UoW, actor: Manager, body: schemas.OpenDueIn | None = None
) -> list[schemas.PeriodOut]:
    created = periods.open_due(uow, actor, contract_id=body.contract_id if body else None)
    return _periods_out(uow, created)


@router.get("/periods/{period_id}", response_model=schemas.PeriodOut, responses=_PROBLEMS)
def get_period(period_id: str, uow: UoW, actor: Reader) -> schemas.PeriodOut:
    return _periods_out(uow, [periods.get_period(uow, actor, period_id)])[0]


@router.post(
    "/periods/{period_id}/close",
    response_model=schemas.StatementOut,
    summary="Close an ended period: its statement and settlement posting, once",
    responses=_PROBLEMS,
)
def close_period(period_id: str, uow: UoW, actor: Manager) -> JSONResponse:
    closed = periods.close(uow, actor, period_id)
    return JSONResponse(_statement_body(closed.period, closed.statement))


@router.get(
    "/periods/{period_id}/statement",
    response_model=schemas.StatementOut,
    summary="A closed period's statement",
    responses=_PROBLEMS,
)
def get_statement(period_id: str, uow: UoW, actor: Reader) -> JSONResponse:
    period, statement = _statement(uow, actor, period_id)
    return JSONResponse(_statement_body(period, statement))


@router.get(
    "/periods/{period_id}/statement.csv",
    response_class=Response,
    summary="A closed period's statement as CSV",
    responses={200: {"content": {"text/csv": {}}}, **_PROBLEMS},
)
def get_statement_csv(period_id: str, uow: UoW, actor: Reader, settings: SettingsDep) -> Response:
    file = periods.statement_file(uow, actor, period_id, "csv", bank_name=settings.bank_name)
    return attachment(file.body, file.media_type, file.filename)


@router.get(
    "/periods/{period_id}/statement.pdf",
    response_class=Response,
    summary="A closed period's statement as PDF",
    responses={200: {"content": {"application/pdf": {}}}, **_PROBLEMS},
)
def get_statement_pdf(period_id: str, uow: UoW, actor: Reader, settings: SettingsDep) -> Response:
    file = periods.statement_file(uow, actor, period_id, "pdf", bank_name=settings.bank_name)
    return attachment(file.body, file.media_type, file.filename)


def _statement(
    uow: UnitOfWork, actor: Principal, period_id: str
) -> tuple[SettlementPeriod, SettlementStatement]:
    period = periods.get_period(uow, actor, period_id)
    return period, periods.statement_of(uow, period)


def _content(statement: SettlementStatement) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(statement.content)
    return content


def _statement_body(period: SettlementPeriod, statement: SettlementStatement) -> dict[str, Any]:
    return schemas.StatementOut(
        id=statement.public_id,
        period_id=period.public_id,
        sha256=statement.sha256,
        content=_content(statement),
    ).model_dump(mode="json")


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(field, _("give a time zone, e.g. 2026-11-01T00:00:00Z"))
    return value


# -- payout runs ----------------------------------------------------------------------------------


@router.post(
    "/payout-runs",
    response_model=schemas.PayoutRunOut,
    status_code=201,
    summary="Pay every closed period owed in a currency (Idempotency-Key accepted)",
    responses=_PROBLEMS,
)
def create_payout_run(
    body: schemas.PayoutRunIn,
    request: Request,
    uow: UoW,
    actor: Manager,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    given = body.debtor
    debtor = payouts.check_debtor(
        given.name if given else settings.bank_name,
        given.iban if given else payouts.DEFAULT_DEBTOR_IBAN,
        given.bic if given else payouts.DEFAULT_DEBTOR_BIC,
    )
    outcome = payouts.create_run_once(
        uow,
        actor,
        currency=body.currency,
        debtor=debtor,
        execution_date=body.execution_date,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        lock_seconds=settings.idempotency_in_flight_seconds,
        render=lambda run: _run_out(uow, run).model_dump(mode="json"),
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("/payout-runs", response_model=Page[schemas.PayoutRunOut], summary="List payout runs")
def list_payout_runs(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
) -> Page[schemas.PayoutRunOut]:
    rows, next_cursor = payouts.list_runs(uow, actor, currency=currency, cursor=cursor, limit=limit)
    return Page(items=[_run_out(uow, r) for r in rows], next_cursor=next_cursor)


@router.get("/payout-runs/{run_id}", response_model=schemas.PayoutRunOut, responses=_PROBLEMS)
def get_payout_run(run_id: str, uow: UoW, actor: Reader) -> schemas.PayoutRunOut:
    return _run_out(uow, payouts.get_run(uow, actor, run_id))


@router.get(
    "/payout-runs/{run_id}/pain.001",
    response_class=Response,
    summary="The run's ISO 20022 pain.001.001.09 credit-transfer file, validated",
    responses={200: {"content": {"application/xml": {}}}, **_PROBLEMS},
)
def get_payout_file(run_id: str, uow: UoW, actor: Reader) -> Response:
    run = payouts.get_run(uow, actor, run_id)
    body = payouts.pain001_of(uow, run)
    return attachment(body, "application/xml", f"{run.public_id}.pain.001.xml")


# -- response shapes ------------------------------------------------------------------------------


def _version_out(version: ContractVersion) -> schemas.VersionOut:
    return schemas.VersionOut(
        id=version.public_id,
        version=version.version,
        effective_from=version.effective_from,
        base_share_bps=version.base_share_bps,
        category_overrides={str(k): int(v) for k, v in version.category_overrides.items()},
        sales_tiers=[schemas.TierIn(**t) for t in version.sales_tiers],
        new_customer_fee_minor=version.new_customer_fee_minor,
        minimum_monthly_fee_minor=version.minimum_monthly_fee_minor,
        pool_party_share_bps=version.pool_party_share_bps,
        note=version.note,
        created_at=version.created_at,
        created_by=version.created_by,
    )


def _contract_out(contract: CommissionContract) -> schemas.ContractOut:
    return schemas.ContractOut(
        id=contract.public_id,
        party_kind=contract.party_kind,
        party_id=contract.party_ref,
        party_name=contract.party_name,
        currency=contract.currency,
        frequency=contract.frequency,
        period_days=contract.period_days,
        timezone=contract.timezone,
        starts_on=contract.starts_on,
        created_at=contract.created_at,
        versions=[_version_out(v) for v in contract.versions],
    )


def _pool_out(uow: UnitOfWork, pool: Pool) -> schemas.PoolOut:
    contract = pools.contract_of(uow, pool)
    account = pools.account_of(uow, pool)
    return schemas.PoolOut(
        id=pool.public_id,
        contract_id=contract.public_id,
        party_id=contract.party_ref,
        name=pool.name,
        currency=pool.currency,
        balance_minor=pools.balance_minor(uow, pool),
        account_id=account.public_id,
        created_at=pool.created_at,
    )


def _movement_response(movement: pools.Movement) -> JSONResponse:
    transaction: LedgerTransaction = movement.transaction
    body = schemas.PoolMovementOut(
        transaction_id=transaction.public_id,
        pool_id=movement.pool.public_id,
        kind=transaction.kind,
        amount_minor=movement.amount_minor,
        party_minor=movement.party_minor,
        bank_minor=movement.bank_minor,
        campaign_ref=movement.campaign_ref,
        effective_at=transaction.effective_at,
    ).model_dump(mode="json")
    if movement.replayed:
        return JSONResponse(body, status_code=200, headers={"Idempotent-Replayed": "true"})
    return JSONResponse(body, status_code=201)


def _periods_out(uow: UnitOfWork, rows: Sequence[SettlementPeriod]) -> list[schemas.PeriodOut]:
    owners = contracts.contracts_by_ids(uow, {p.contract_id for p in rows})
    stated = periods.statement_ids(uow, {p.id for p in rows})
    paid = payouts.paid_runs(uow, {p.id for p in rows})
    out = []
    for period in rows:
        contract = owners[period.contract_id]
        out.append(
            schemas.PeriodOut(
                id=period.public_id,
                contract_id=contract.public_id,
                party_kind=contract.party_kind,
                party_id=contract.party_ref,
                party_name=contract.party_name,
                currency=contract.currency,
                sequence=period.sequence,
                starts_on=period.starts_on,
                ends_on=period.ends_on,
                start_at=period.start_at,
                end_at=period.end_at,
                timezone=contract.timezone,
                status=period.status,
                closed_at=period.closed_at,
                net_minor=period.net_minor,
                statement_id=stated.get(period.id),
                paid_in_run=paid.get(period.id),
            )
        )
    return out


def _run_out(uow: UnitOfWork, run: PayoutRun) -> schemas.PayoutRunOut:
    refs = payouts.period_refs(uow, run.lines)
    paid = payouts.paid_lines(run)
    return schemas.PayoutRunOut(
        id=run.public_id,
        currency=run.currency,
        execution_date=run.execution_date,
        debtor_name=run.debtor_name,
        debtor_iban=run.debtor_iban,
        debtor_bic=run.debtor_bic,
        created_at=run.created_at,
        number_of_transactions=len(paid),
        control_sum=exports.decimal_text(sum(line.amount_minor for line in paid), run.currency),
        lines=[
            schemas.PayoutLineOut(
                id=line.public_id,
                period_id=refs[line.period_id],
                status=line.status,
                party_kind=line.party_kind,
                party_id=line.party_ref,
                creditor_name=line.creditor_name,
                creditor_iban=line.creditor_iban,
                creditor_bic=line.creditor_bic,
                amount_minor=line.amount_minor,
                reason=line.reason,
                transaction_id=line.transaction_ref,
            )
            for line in run.lines
        ],
    )
