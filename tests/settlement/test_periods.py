"""Settlement periods: opened as they come due, closed once, and the state machine in full."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from beyondbank.core.authz import SYSTEM, Principal, Role
from beyondbank.core.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.models import LedgerTransaction, Posting
from beyondbank.settlement import contracts, exports, periods
from beyondbank.settlement.models import (
    ContractVersion,
    Frequency,
    PartyKind,
    PeriodStatus,
    SettlementItem,
    SettlementPeriod,
    SettlementStatement,
)
from beyondbank.settlement.periods import TRANSITIONS, PeriodAction, next_status
from beyondbank.settlement.schemas import VersionIn
from tests import factories as f
from tests.settlement import factories as sf

SEP = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)


def _ledger_rows(uow: UnitOfWork) -> tuple[int, int]:
    return (
        uow.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
        uow.session.scalar(select(func.count()).select_from(Posting)) or 0,
    )


def _contract(uow: UnitOfWork, **terms: object):  # type: ignore[no-untyped-def]
    merchant = f.make_merchant(uow)
    return sf.make_contract(uow, merchant.public_id, **terms)


# -- the transition table --------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(PeriodStatus))
@pytest.mark.parametrize("action", list(PeriodAction))
def test_every_state_and_action(status: PeriodStatus, action: PeriodAction) -> None:
    expected = {
        (PeriodStatus.OPEN, PeriodAction.CLOSE): PeriodStatus.CLOSING,
        (PeriodStatus.CLOSING, PeriodAction.TAKE_OVER): PeriodStatus.CLOSING,
        (PeriodStatus.CLOSING, PeriodAction.FINISH): PeriodStatus.CLOSED,
        (PeriodStatus.CLOSING, PeriodAction.RELEASE): PeriodStatus.OPEN,
    }
    assert expected == TRANSITIONS
    if (status, action) in expected:
        assert next_status(status, action) is expected[(status, action)]
    else:
        with pytest.raises(InvalidTransition) as refused:
            next_status(status, action)
        assert refused.value.extra["current_status"] == status.value
        assert status.value in refused.value.detail


def test_close_in_every_state(uow: UnitOfWork) -> None:
    """open (ended) → closed; open (running) → 409; closing → 409 naming it; closed → the same
    statement, nothing written."""
    contract = _contract(uow)
    september, october, november = sf.open_periods(uow, contract)
    sf.sale(uow, contract, 10_000, at=SEP)

    with pytest.raises(Conflict) as running:
        periods.close(uow, SYSTEM, november.public_id)
    assert running.value.extra["current_status"] == "open"
    assert "once it has ended" in running.value.detail

    uow.session.execute(
        update(SettlementPeriod)
        .where(SettlementPeriod.id == october.id)
        .values(status=PeriodStatus.CLOSING, closing_token="x", closing_started_at=uow.clock.now())
    )
    with pytest.raises(InvalidTransition) as closing:
        periods.close(uow, SYSTEM, october.public_id)
    assert closing.value.extra["current_status"] == "closing"

    first = periods.close(uow, SYSTEM, september.public_id)
    assert first.created
    assert first.period.status is PeriodStatus.CLOSED
    rows = _ledger_rows(uow)
    again = periods.close(uow, SYSTEM, september.public_id)
    assert not again.created
    assert again.statement.content == first.statement.content
    assert again.statement.sha256 == first.statement.sha256
    assert _ledger_rows(uow) == rows  # no new postings


def test_a_stale_closing_is_taken_over_once_its_lease_runs_out(uow: UnitOfWork) -> None:
    contract = _contract(uow)
    september = sf.open_periods(uow, contract)[0]
    stale = uow.clock.now() - periods.CLOSING_LEASE - timedelta(seconds=1)
    uow.session.execute(
        update(SettlementPeriod)
        .where(SettlementPeriod.id == september.id)
        .values(status=PeriodStatus.CLOSING, closing_token="dead", closing_started_at=stale)
    )
    closed = periods.close(uow, SYSTEM, september.public_id)
    assert closed.created
    assert closed.period.status is PeriodStatus.CLOSED
    assert closed.period.closing_token is None


def test_a_failed_close_hands_the_period_back(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = _contract(uow)
    september = sf.open_periods(uow, contract)[0]
    uow.commit()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the ledger is down")

    monkeypatch.setattr(periods, "_post", broken)
    with pytest.raises(RuntimeError):
        periods.close(uow, SYSTEM, september.public_id)
    assert sf.period_list(uow, contract)[0].status is PeriodStatus.OPEN
    monkeypatch.undo()
    assert periods.close(uow, SYSTEM, september.public_id).created


def test_merchants_cannot_open_or_close(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(uow, merchant.public_id)
    september = sf.open_periods(uow, contract)[0]
    admin = f.principal(f.make_user(uow, Role.MERCHANT_ADMIN, merchant))
    with pytest.raises(Forbidden):
        periods.close(uow, admin, september.public_id)
    with pytest.raises(Forbidden):
        periods.open_due(uow, admin)


def test_close_twice_gives_byte_identical_exports_and_no_new_postings(uow: UnitOfWork) -> None:
    contract = _contract(uow, minimum_monthly_fee_minor=1_000)
    september = sf.open_periods(uow, contract)[0]
    sf.sale(uow, contract, 123_456, at=SEP, member="mem_1", category="books")
    sf.refund(uow, contract, 456, at=SEP, member="mem_1", category="books")
    first = periods.close(uow, SYSTEM, september.public_id)
    rows = _ledger_rows(uow)
    uow.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]

    def render(statement: SettlementStatement) -> tuple[bytes, bytes]:
        content = json.loads(statement.content)
        return (
            exports.statement_csv(statement.public_id, statement.sha256, content),
            exports.statement_pdf(statement.public_id, statement.sha256, content, bank_name="B"),
        )

    csv_1, pdf_1 = render(first.statement)
    second = periods.close(uow, SYSTEM, september.public_id)
    csv_2, pdf_2 = render(second.statement)
    assert (csv_1, pdf_1) == (csv_2, pdf_2)
    assert second.statement.content == first.statement.content
    assert _ledger_rows(uow) == rows
    assert pdf_1.startswith(b"%PDF-")
    assert b"/CreationDate (D:2026112210" in pdf_1  # the close time, not the wall clock
    # Exactly one settlement posting for the period, under its deterministic key.
    assert (
        uow.session.scalar(
            select(func.count()).where(
                LedgerTransaction.idempotency_key == f"settlement:{september.public_id}"
            )
        )
        == 1
    )


def test_stored_statements_and_versions_cannot_be_changed(uow: UnitOfWork) -> None:
    contract = _contract(uow)
    september = sf.open_periods(uow, contract)[0]
    periods.close(uow, SYSTEM, september.public_id)
    for sql in (
        "UPDATE settlement_statements SET sha256 = 'x'",
        "DELETE FROM settlement_statements",
        "UPDATE settlement_contract_versions SET base_share_bps = 0",
        "DELETE FROM settlement_contract_versions",
    ):
        with pytest.raises(DBAPIError, match="immutable"), uow.session.begin_nested():
            uow.session.execute(text(sql))


# -- opening --------------------------------------------------------------------------------------


def test_open_due_creates_each_period_once(uow: UnitOfWork) -> None:
    contract = _contract(uow)
    created = periods.open_due(uow, SYSTEM, contract_id=contract.public_id)
    assert [(p.sequence, p.starts_on, p.ends_on) for p in created] == [
        (1, date(2026, 9, 1), date(2026, 10, 1)),
        (2, date(2026, 10, 1), date(2026, 11, 1)),
        (3, date(2026, 11, 1), date(2026, 12, 1)),  # running: it started before now
    ]
    assert all(p.status is PeriodStatus.OPEN for p in created)
    # London midnights stored in UTC: BST in October, GMT in November.
    assert created[1].start_at == datetime(2026, 9, 30, 23, tzinfo=UTC)
    assert created[1].end_at == datetime(2026, 11, 1, 0, tzinfo=UTC)
    assert periods.open_due(uow, SYSTEM, contract_id=contract.public_id) == []
    uow.clock.advance(timedelta(days=10))  # type: ignore[attr-defined]
    later = periods.open_due(uow, SYSTEM)
    assert [(p.sequence, p.starts_on) for p in later if p.contract_id == contract.id] == [
        (4, date(2026, 12, 1))
    ]


def test_weekly_and_custom_frequencies(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    weekly = sf.make_contract(
        uow, merchant.public_id, starts_on=date(2026, 11, 5), frequency=Frequency.WEEK
    )
    assert [(p.starts_on, p.ends_on) for p in sf.open_periods(uow, weekly)] == [
        (date(2026, 11, 5), date(2026, 11, 9)),
        (date(2026, 11, 9), date(2026, 11, 16)),
        (date(2026, 11, 16), date(2026, 11, 23)),
    ]
    partner = f.make_partner(uow)
    custom = sf.make_contract(
        uow,
        partner.public_id,
        kind=PartyKind.PARTNER,
        starts_on=date(2026, 11, 1),
        frequency=Frequency.DAYS,
        period_days=10,
    )
    assert [(p.starts_on, p.ends_on) for p in sf.open_periods(uow, custom)] == [
        (date(2026, 11, 1), date(2026, 11, 11)),
        (date(2026, 11, 11), date(2026, 11, 21)),
        (date(2026, 11, 21), date(2026, 12, 1)),
    ]


# -- contract history -----------------------------------------------------------------------------


def test_versions_never_rewrite_history(uow: UnitOfWork) -> None:
    contract = _contract(uow, base_share_bps=500)
    september, october, _ = sf.open_periods(uow, contract)
    periods.close(uow, SYSTEM, september.public_id)
    v1 = contract.versions[0]

    # Not before the latest version's date.
    with pytest.raises(InvalidInput) as early:
        contracts.add_version(
            uow, SYSTEM, contract, VersionIn(effective_from=date(2026, 9, 1), base_share_bps=1)
        )
    assert early.value.errors[0].field == "body.effective_from"
    # Not on or before the start of a settled period: September is closed.
    with pytest.raises(InvalidInput):
        contracts.add_version(
            uow, SYSTEM, contract, VersionIn(effective_from=date(2026, 8, 1), base_share_bps=1)
        )
    periods.close(uow, SYSTEM, october.public_id)
    with pytest.raises(Conflict) as settled:
        contracts.add_version(
            uow, SYSTEM, contract, VersionIn(effective_from=date(2026, 10, 1), base_share_bps=1)
        )
    assert settled.value.extra["period_id"] == october.public_id
    # After the last settled period's start: accepted, as version 2; version 1 is untouched.
    v2 = contracts.add_version(
        uow, SYSTEM, contract, VersionIn(effective_from=date(2026, 10, 2), base_share_bps=700)
    )
    assert v2.version == 2
    uow.session.refresh(v1)
    assert (v1.version, v1.base_share_bps, v1.effective_from) == (1, 500, date(2026, 9, 1))
    assert contracts.version_in_force(uow, contract, date(2026, 10, 1)).version == 1
    assert contracts.version_in_force(uow, contract, date(2026, 10, 2)).version == 2
    assert contracts.version_in_force(uow, contract, date(2030, 1, 1)).version == 2
    # The closed periods keep the version they were settled under.
    assert {p.version_id for p in sf.period_list(uow, contract)[:2]} == {v1.id}
    count = uow.session.scalar(
        select(func.count()).where(ContractVersion.contract_id == contract.id)
    )
    assert count == 2


def test_one_contract_per_party_and_currency(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    sf.make_contract(uow, merchant.public_id)
    with pytest.raises(Conflict, match="already has a contract in GBP"):
        sf.make_contract(uow, merchant.public_id)


def test_merchant_users_see_only_their_own(uow: UnitOfWork) -> None:
    mine, theirs = f.make_merchant(uow), f.make_merchant(uow)
    own = sf.make_contract(uow, mine.public_id)
    other = sf.make_contract(uow, theirs.public_id)
    admin: Principal = f.principal(f.make_user(uow, Role.MERCHANT_ADMIN, mine))
    assert contracts.get_contract(uow, admin, own.public_id) is own
    with pytest.raises(NotFound):
        contracts.get_contract(uow, admin, other.public_id)
    rows, _ = contracts.list_contracts(uow, admin, limit=50)
    assert [c.public_id for c in rows] == [own.public_id]
    their_period = sf.open_periods(uow, other)[0]
    with pytest.raises(NotFound):
        periods.get_period(uow, admin, their_period.public_id)
    listed, _ = periods.list_periods(uow, admin, periods.PeriodFilters(), limit=50)
    assert {p.contract_id for p in listed} <= {own.id}


# -- every transaction on exactly one statement ---------------------------------------------------


def test_periods_close_in_order(uow: UnitOfWork) -> None:
    contract = _contract(uow)
    september, october, _ = sf.open_periods(uow, contract)
    with pytest.raises(Conflict) as refused:
        periods.close(uow, SYSTEM, october.public_id)
    assert refused.value.extra == {"current_status": "open", "close_first": september.public_id}
    periods.close(uow, SYSTEM, september.public_id)
    assert periods.close(uow, SYSTEM, october.public_id).created


def test_a_late_posting_lands_on_the_next_statement_once(uow: UnitOfWork) -> None:
    contract = _contract(uow, base_share_bps=1_000)
    september, october, _ = sf.open_periods(uow, contract)
    sf.sale(uow, contract, 10_000, at=SEP)
    before_contract = sf.sale(uow, contract, 77_777, at=datetime(2026, 8, 31, 12, tzinfo=UTC))
    first = periods.close(uow, SYSTEM, september.public_id)
    # Posted after September closed, but effective in September.
    late = sf.sale(uow, contract, 5_000, at=datetime(2026, 9, 20, tzinfo=UTC))
    sf.sale(uow, contract, 20_000, at=datetime(2026, 10, 5, tzinfo=UTC))
    second = periods.close(uow, SYSTEM, october.public_id)

    sep, oct_ = json.loads(first.statement.content), json.loads(second.statement.content)
    assert sep["totals"]["sales_minor"] == 10_000  # the pre-contract sale is nobody's business
    assert oct_["late"] == {"count": 1, "amount_minor": 5_000}
    assert oct_["totals"]["sales_minor"] == 25_000
    assert oct_["totals"]["commission_minor"] == 2_500
    # September's statement is as it was; each transaction is settled by exactly one period.
    assert periods.close(uow, SYSTEM, september.public_id).statement.sha256 == (
        first.statement.sha256
    )
    settled = dict(
        uow.session.execute(select(SettlementItem.transaction_id, SettlementItem.period_id)).all()
    )
    assert settled[late.id] == october.id
    assert before_contract.id not in settled
    assert sorted(settled.values()) == [september.id, october.id, october.id]
