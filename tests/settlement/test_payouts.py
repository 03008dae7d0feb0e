"""Payout runs and their pain.001.001.09 files: paid once, counted and summed from the lines,
valid against the official ISO 20022 schema, and refused when corrupted."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.errors import Conflict, Forbidden, InvalidInput
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger import verify
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import LedgerTransaction
from beyondbank.settlement import contracts, exports, payouts, periods
from beyondbank.settlement.models import CommissionContract, PartyKind, PayoutLineStatus
from tests import factories as f
from tests.settlement import factories as sf

SEP = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
NS = {"p": exports.PAIN_NS}
BANK = payouts.check_debtor("Thames & Harbour Bank", "GB18THHB40051512345678", "THHBGB2L")


def _closed_with_sale(uow: UnitOfWork, contract: CommissionContract, amount: int) -> str:
    september = sf.open_periods(uow, contract)[0]
    sf.sale(uow, contract, amount, at=SEP)
    periods.close(uow, SYSTEM, september.public_id)
    return september.public_id


def _payout_count(uow: UnitOfWork) -> int:
    return (
        uow.session.scalar(select(func.count()).where(LedgerTransaction.kind == Kind.PAYOUT.value))
        or 0
    )


def test_a_run_pays_each_period_once_and_lists_exceptions(uow: UnitOfWork) -> None:
    # Base share 10%: a 10,000.00 sale nets 9,000.00; 333.33 nets 299.99 (commission 33.33).
    first = f.make_merchant(uow, settlement_iban="GB29 NWBK 6016 1331 9268 19")
    second = f.make_merchant(uow, settlement_iban="DE89370400440532013000")
    second.settlement_bic = "COBADEFFXXX"
    unpaid = f.make_partner(uow, settlement_iban=None)
    c1 = sf.make_contract(uow, first.public_id, base_share_bps=1_000)
    c2 = sf.make_contract(uow, second.public_id, base_share_bps=1_000)
    c3 = sf.make_contract(uow, unpaid.public_id, kind=PartyKind.PARTNER, base_share_bps=1_000)
    p1 = _closed_with_sale(uow, c1, 1_000_000)
    p2 = _closed_with_sale(uow, c2, 33_333)
    p3 = _closed_with_sale(uow, c3, 50_000)

    run = payouts.create_run(uow, SYSTEM, currency="GBP", debtor=BANK)
    by_period = {payouts.period_refs(uow, run.lines)[line.period_id]: line for line in run.lines}
    assert by_period[p1].status is PayoutLineStatus.PAID
    assert (by_period[p1].amount_minor, by_period[p1].creditor_iban) == (
        900_000,
        "GB29NWBK60161331926819",
    )
    assert by_period[p1].creditor_bic == "NWBKGB2LXXX"  # from the bank registry, via the IBAN
    assert (by_period[p2].amount_minor, by_period[p2].creditor_bic) == (30_000, "COBADEFFXXX")
    assert by_period[p3].status is PayoutLineStatus.EXCEPTION
    assert by_period[p3].reason == "no settlement IBAN on file"

    # The payouts are posted, once: the payables now hold nothing.
    assert _payout_count(uow) == 2
    for contract in (c1, c2):
        payable = contracts.payable_account(uow, contract)
        assert ledger.balance(uow, payable).posted.amount == 0
    assert verify.run(uow.session).ok

    # A second run has only the exception left: refused, listing it, and writing nothing.
    with pytest.raises(Conflict) as nothing:
        payouts.create_run(uow, SYSTEM, currency="GBP", debtor=BANK)
    assert nothing.value.extra["exceptions"] == [
        {"period_id": p3, "party_id": unpaid.public_id, "reason": "no settlement IBAN on file"}
    ]
    assert _payout_count(uow) == 2
    # Once the partner gives its IBAN, the next run pays it.
    unpaid.settlement_iban = "GB33BUKB20201555555555"
    later = payouts.create_run(uow, SYSTEM, currency="GBP", debtor=BANK)
    assert [(line.status, line.amount_minor) for line in later.lines] == [
        (PayoutLineStatus.PAID, 45_000)
    ]
    with pytest.raises(Conflict, match="every closed period owed is paid"):
        payouts.create_run(uow, SYSTEM, currency="GBP", debtor=BANK)


def test_the_file_validates_and_its_sums_are_computed(uow: UnitOfWork) -> None:
    merchants = [f.make_merchant(uow) for _ in range(3)]
    amounts = [1_000_001, 2, 333_333]
    for merchant, amount in zip(merchants, amounts, strict=True):
        contract = sf.make_contract(uow, merchant.public_id, base_share_bps=0)
        _closed_with_sale(uow, contract, amount)
    run = payouts.create_run(
        uow, SYSTEM, currency="GBP", debtor=BANK, execution_date=date(2026, 11, 23)
    )
    document = payouts.pain001_of(uow, run)
    assert exports.pain001_problems(document) == []
    root = ET.fromstring(document)  # noqa: S314 - our own output
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    assert header.findtext("p:MsgId", namespaces=NS) == run.public_id
    assert header.findtext("p:CreDtTm", namespaces=NS) == "2026-11-22T10:00:00Z"
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert header.findtext("p:CtrlSum", namespaces=NS) == "13333.36"
    assert Decimal("10000.01") + Decimal("0.02") + Decimal("3333.33") == Decimal("13333.36")
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert info is not None
    assert info.findtext("p:ReqdExctnDt/p:Dt", namespaces=NS) == "2026-11-23"
    assert info.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == "GB18THHB40051512345678"
    assert sorted(a.text or "" for a in info.iterfind("p:CdtTrfTxInf/p:Amt/p:InstdAmt", NS)) == [
        "0.02",
        "10000.01",
        "3333.33",
    ]
    assert {a.get("Ccy") for a in info.iterfind("p:CdtTrfTxInf/p:Amt/p:InstdAmt", NS)} == {"GBP"}

    # Rendered from the run's rows: the same bytes later, whatever the clock says.
    uow.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
    assert payouts.pain001_of(uow, run) == document


def _transfer(amount: int, **over: object) -> exports.Transfer:
    values: dict[str, object] = {
        "instruction_id": "pyl_1",
        "end_to_end_id": "stp_1",
        "amount_minor": amount,
        "creditor_name": "Merchant Ltd",
        "creditor_iban": "GB29NWBK60161331926819",
        "creditor_bic": None,
        "remittance": "Settlement stp_1",
        **over,
    }
    return exports.Transfer(**values)  # type: ignore[arg-type]


def _batch(*transfers: exports.Transfer, currency: str = "GBP") -> exports.Batch:
    return exports.Batch(
        message_id="pay_TEST",
        created_at=datetime(2026, 11, 22, 10, tzinfo=UTC),
        execution_date=date(2026, 11, 23),
        currency=currency,
        debtor_name="Bank",
        debtor_iban="GB18THHB40051512345678",
        debtor_bic="THHBGB2L",
        transfers=transfers,
    )


@pytest.mark.parametrize(
    ("corrupt", "complaint"),
    [
        (lambda d: d.replace(b"<MsgId>pay_TEST</MsgId>", b""), "MsgId"),  # a required element
        (lambda d: d.replace(b"GB29NWBK60161331926819", b"not an iban!"), "IBAN"),  # a pattern
        (lambda d: d.replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>CASH</PmtMtd>"), "PmtMtd"),
        (lambda d: d.replace(b'Ccy="GBP"', b""), "Ccy"),
        (
            lambda d: d.replace(b"<CtrlSum>12.35</CtrlSum>", b"<CtrlSum>99.99</CtrlSum>", 1),
            "CtrlSum",
        ),
        (lambda d: d.replace(b"<NbOfTxs>2</NbOfTxs>", b"<NbOfTxs>3</NbOfTxs>", 1), "NbOfTxs"),
        (lambda d: d[:-40], "well-formed"),
    ],
)
def test_a_corrupted_document_fails_validation(corrupt, complaint: str) -> None:  # type: ignore[no-untyped-def]
    document = exports.pain001(_batch(_transfer(1_234), _transfer(1, end_to_end_id="stp_2")))
    assert exports.pain001_problems(document) == []
    problems = exports.pain001_problems(corrupt(document))
    assert problems
    assert any(complaint in problem for problem in problems), problems


def test_counts_and_sums_come_from_the_transfers_never_from_input() -> None:
    document = exports.pain001(_batch(*(_transfer(n) for n in (5, 7, 11)), currency="JPY"))
    root = ET.fromstring(document)  # noqa: S314 - our own output
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "23"
    eur = exports.pain001(_batch(_transfer(150), currency="EUR"))
    assert b"<Cd>SEPA</Cd>" in eur
    assert b"<ChrgBr>SLEV</ChrgBr>" in eur
    with pytest.raises(ValueError, match="at least one"):
        exports.pain001(_batch())


def test_a_document_that_fails_its_checks_is_never_released() -> None:
    with pytest.raises(exports.ExportInvalid):
        exports.pain001(_batch(_transfer(100, creditor_iban="XX00 not an IBAN")))


def test_the_bank_account_is_checked_and_merchants_cannot_run_payouts(uow: UnitOfWork) -> None:
    with pytest.raises(InvalidInput) as bad:
        payouts.check_debtor("Bank", "GB00NOPE", "XX")
    assert {e.field for e in bad.value.errors} == {"body.debtor.iban", "body.debtor.bic"}
    merchant = f.make_merchant(uow)
    admin = f.principal(f.make_user(uow, Role.MERCHANT_ADMIN, merchant))
    with pytest.raises(Forbidden):
        payouts.create_run(uow, admin, currency="GBP", debtor=BANK)
    with pytest.raises(Forbidden):
        payouts.list_runs(uow, admin, limit=10)


def test_invalid_iban_on_file_is_an_exception(uow: UnitOfWork) -> None:
    assert payouts.creditor_account(None, None) == "no settlement IBAN on file"
    reason = payouts.creditor_account("GB00NWBK60161331926819", None)
    assert isinstance(reason, str)
    assert reason.startswith("the settlement IBAN on file is not valid")
    bad_bic = payouts.creditor_account("GB29NWBK60161331926819", "NOTABIC")
    assert isinstance(bad_bic, str)
    assert "BIC" in bad_bic
