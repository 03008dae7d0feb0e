"""Statement exports (CSV, PDF) and payouts as ISO 20022 pain.001.001.09 credit transfers.

Everything here renders from stored data only (a statement's canonical content, a payout run's
rows), never from the clock or the live ledger: the same input gives the same bytes, every time.
The PDF's creation date is the period's close time; the pain.001's `MsgId` and `CreDtTm` are
the payout run's id and creation time.

pain.001 is written element by element, its `NbOfTxs` and `CtrlSum` counted and summed from the
transfers themselves, then validated against the official ISO 20022 XSD shipped inside `sepaxml`
and re-checked for its counts and sums before anyone gets it.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

import xmlschema
from fpdf import FPDF

from beyondbank.core.errors import Problem
from beyondbank.core.i18n import _
from beyondbank.core.money import Money

PAIN_VERSION = "pain.001.001.09"
PAIN_NS = f"urn:iso:std:iso:20022:tech:xsd:{PAIN_VERSION}"
ET.register_namespace("", PAIN_NS)


class ExportInvalid(Problem):
    """A document we produced failed its own checks: a bug, never shipped to the bank."""

    status = 500
    slug = "export-invalid"
    title = "The generated document is not valid"


def decimal_text(amount_minor: int, currency: str) -> str:
    """Minor units as the currency's decimal amount, exactly: 12345 GBP → "123.45"."""
    return format(Money(amount_minor, currency).to_decimal(), "f")


# -- statements: CSV ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "section",
    "item",
    "text",
    "count",
    "basis_minor",
    "rate_bps",
    "amount_minor",
    "amount",
)


def _csv_rows(statement_id: str, sha256: str, content: dict[str, Any]) -> Iterator[list[Any]]:
    currency = content["currency"]
    period = content["period"]
    terms = content["terms"]
    totals = content["totals"]

    def money(section: str, item: str, amount: int, **more: Any) -> list[Any]:
        return [
            section,
            item,
            more.get("text", ""),
            more.get("count", ""),
            more.get("basis", ""),
            more.get("rate", ""),
            amount,
            decimal_text(amount, currency),
        ]

    def text(section: str, item: str, value: Any) -> list[Any]:
        return [section, item, value, "", "", "", "", ""]

    yield text("statement", "id", statement_id)
    yield text("statement", "sha256", sha256)
    yield text("statement", "currency", currency)
    for key in ("id", "party_kind", "party_id", "party_name", "starts_on", "ends_on", "timezone"):
        yield text("period", key, period[key])
    yield text("period", "closed_at", content["settlement"]["closed_at"])
    yield text("terms", "version", f"{terms['version']} ({terms['version_id']})")
    yield text("terms", "effective_from", terms["effective_from"])
    for line in content["activity"]:
        yield money(
            "activity", line["kind"], line["amount_minor"], text=line["label"], count=line["count"]
        )
    late = content["late"]
    yield money(
        "activity",
        "late",
        late["amount_minor"],
        text="posted after an earlier period closed",
        count=late["count"],
    )
    for line in content["categories"]:
        yield money(
            "commission",
            line["category"] or "(uncategorised)",
            -line["commission_minor"],
            text=f"sales {line['sales_minor']} returns {line['returns_minor']}",
            basis=line["net_minor"],
            rate=line["rate_bps"],
        )
    for band in content["tiers"]:
        upper = "" if band["to_minor"] is None else band["to_minor"]
        yield money(
            "tier_bonus",
            f"{band['from_minor']}..{upper}",
            -band["bonus_minor"],
            basis=band["slice_minor"],
            rate=band["bonus_bps"],
        )
    new = content["new_customers"]
    yield money(
        "fees", "new_customers", -new["amount_minor"], count=new["count"], basis=new["fee_minor"]
    )
    minimum = content["minimum_fee"]
    yield money(
        "fees",
        "minimum_fee_top_up",
        -minimum["top_up_minor"],
        text=f"period minimum {minimum['period_minor']}, earned {minimum['earned_minor']}",
        basis=minimum["period_minor"],
    )
    rewards = content["merchant_funded_rewards"]
    yield money("info", "merchant_funded_rewards_owed", -rewards["owed_minor"])
    for pool in content["pools"]:
        yield money(
            "pool",
            pool["pool_id"],
            pool["closing_minor"],
            text=(
                f"{pool['name']}: opening {pool['opening_minor']}, party in "
                f"{pool['party_contributions_minor']}, bank in {pool['bank_contributions_minor']}, "
                f"drawn {pool['draws_minor']}"
            ),
        )
    for key in (
        "sales_minor",
        "returns_minor",
        "net_sales_minor",
        "activity_minor",
        "commission_minor",
        "bonus_minor",
        "new_customer_fees_minor",
        "minimum_fee_top_up_minor",
        "charges_minor",
        "net_minor",
    ):
        yield money("total", key.removesuffix("_minor"), totals[key])
    yield text("total", "direction", totals["direction"])
    yield text("settlement", "transaction_id", content["settlement"]["transaction_id"] or "")


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a merchant names itself "=HYPERLINK(…)")
    is prefixed with an apostrophe; numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def statement_csv(statement_id: str, sha256: str, content: dict[str, Any]) -> bytes:
    """One table: a section, an item and its figures per row; amounts from the party's side."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in _csv_rows(statement_id, sha256, content):
        writer.writerow([_safe_text(row[0]), _safe_text(row[1]), _safe_text(row[2]), *row[3:]])
    return out.getvalue().encode("utf-8")


# -- statements: PDF ------------------------------------------------------------------------------


_PUNCTUATION = str.maketrans(
    {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
)


def _latin1(value: object) -> str:
    """The PDF's core fonts speak Latin-1: Latin-1 characters are kept, others lose their accents
    if that makes them Latin-1, and anything else shows as '?' (the CSV and JSON keep the text)."""
    out = []
    for char in str(value).translate(_PUNCTUATION):
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


class _Pdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, _latin1(self._footer_text), align="L")
        self.cell(0, 5, f"Page {self.page_no()}", align="R")


def statement_pdf(
    statement_id: str, sha256: str, content: dict[str, Any], *, bank_name: str
) -> bytes:
    currency = content["currency"]
    period = content["period"]
    totals = content["totals"]
    closed_at = datetime.fromisoformat(content["settlement"]["closed_at"])

    def amount(minor: int) -> str:
        return f"{decimal_text(minor, currency)} {currency}"

    pdf = _Pdf(f"{statement_id}  SHA-256 {sha256}")
    pdf.set_creation_date(closed_at)
    pdf.set_title(_latin1(f"Settlement statement {period['starts_on']} to {period['ends_on']}"))
    pdf.set_author(_latin1(bank_name))
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)

    def row(cells: Sequence[object], widths: Sequence[float], bold: bool = False) -> None:
        pdf.set_font("Helvetica", style="B" if bold else "", size=9)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            align = "L" if i == 0 else "R"
            pdf.cell(width, 5.5, _latin1(cell), border="B" if bold else 0, align=align)
        pdf.ln(5.5)

    pdf.set_font("Helvetica", style="B", size=15)
    pdf.cell(0, 9, _latin1(f"{bank_name}: settlement statement"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    last_day = date.fromordinal(date.fromisoformat(period["ends_on"]).toordinal() - 1)
    for label, value in (
        ("Party", f"{period['party_name']} ({period['party_kind']} {period['party_id']})"),
        ("Period", f"{period['starts_on']} to {last_day.isoformat()} ({period['timezone']})"),
        ("Period id", period["id"]),
        ("Contract", f"{period['contract_id']}, version {content['terms']['version']}"),
        ("Closed", closed_at.isoformat()),
        ("Currency", currency),
    ):
        pdf.cell(30, 5, _latin1(label))
        pdf.cell(0, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    heading("Activity in the period")
    widths: tuple[float, ...] = (100, 25, 55)
    row(("", "Transactions", "Amount"), widths, bold=True)
    for line in content["activity"]:
        row((line["label"], line["count"], amount(line["amount_minor"])), widths)
    row(("Activity total", "", amount(totals["activity_minor"])), widths, bold=True)
    late = content["late"]
    if late["count"]:
        pdf.set_font("Helvetica", style="I", size=8)
        pdf.cell(
            0,
            5,
            f"Includes {late['count']} transaction(s) posted after an earlier period had closed: "
            f"{amount(late['amount_minor'])}.",
            new_x="LMARGIN",
            new_y="NEXT",
        )

    heading("Commission on net sales, by category")
    widths = (55, 35, 30, 20, 40)
    row(("Category", "Sales", "Returns", "Rate", "Commission"), widths, bold=True)
    for line in content["categories"]:
        row(
            (
                line["category"] or "(uncategorised)",
                amount(line["sales_minor"]),
                amount(line["returns_minor"]),
                f"{line['rate_bps']} bps",
                amount(line["commission_minor"]),
            ),
            widths,
        )
    if content["tiers"]:
        heading("Sales-tier bonus (marginal bands)")
        widths = (80, 40, 20, 40)
        row(("Band (period share)", "Slice", "Rate", "Bonus"), widths, bold=True)
        for band in content["tiers"]:
            upper = "" if band["to_minor"] is None else amount(band["to_minor"])
            row(
                (
                    f"{amount(band['from_minor'])} to {upper or 'no limit'}",
                    amount(band["slice_minor"]),
                    f"{band['bonus_bps']} bps",
                    amount(band["bonus_minor"]),
                ),
                widths,
            )
    heading("Fees")
    widths = (140, 40)
    new = content["new_customers"]
    minimum = content["minimum_fee"]
    row(
        (
            f"New customers: {new['count']} x {amount(new['fee_minor'])}",
            amount(new["amount_minor"]),
        ),
        widths,
    )
    row(
        (
            f"Minimum fee top-up (period minimum {amount(minimum['period_minor'])}, "
            f"earned {amount(minimum['earned_minor'])})",
            amount(minimum["top_up_minor"]),
        ),
        widths,
    )
    rewards = content["merchant_funded_rewards"]
    if rewards["granted_minor"] or rewards["clawed_back_minor"]:
        heading("Merchant-funded rewards")
        row(("Granted to members", amount(rewards["granted_minor"])), widths)
        row(("Clawed back", amount(rewards["clawed_back_minor"])), widths)
        row(("Owed for rewards", amount(rewards["owed_minor"])), widths, bold=True)
    if content["pools"]:
        heading("Co-funding pools")
        widths = (50, 26, 26, 26, 26, 26)
        row(("Pool", "Opening", "Party in", "Bank in", "Drawn", "Closing"), widths, bold=True)
        for pool in content["pools"]:
            row(
                (
                    pool["name"],
                    amount(pool["opening_minor"]),
                    amount(pool["party_contributions_minor"]),
                    amount(pool["bank_contributions_minor"]),
                    amount(pool["draws_minor"]),
                    amount(pool["closing_minor"]),
                ),
                widths,
            )

    heading("Summary")
    widths = (140, 40)
    for label, key in (
        ("Activity (from the ledger)", "activity_minor"),
        ("Commission", "commission_minor"),
        ("Sales-tier bonus", "bonus_minor"),
        ("New-customer fees", "new_customer_fees_minor"),
        ("Minimum fee top-up", "minimum_fee_top_up_minor"),
        ("Charges", "charges_minor"),
    ):
        row((label, amount(totals[key])), widths)
    net = totals["net_minor"]
    verdict = {
        "payable": f"The bank pays {period['party_name']}",
        "receivable": f"{period['party_name']} owes the bank",
        "nil": "Nothing to pay either way",
    }[totals["direction"]]
    row((verdict, amount(abs(net))), widths, bold=True)
    return bytes(pdf.output())


# -- payouts: pain.001.001.09 ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transfer:
    instruction_id: str
    end_to_end_id: str
    amount_minor: int
    creditor_name: str
    creditor_iban: str
    creditor_bic: str | None
    remittance: str


@dataclass(frozen=True, slots=True)
class Batch:
    message_id: str
    created_at: datetime
    execution_date: date
    currency: str
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    transfers: tuple[Transfer, ...]


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{PAIN_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _path(parent: ET.Element, tags: str, text: str) -> None:
    *outer, last = tags.split("/")
    for tag in outer:
        parent = _el(parent, tag)
    _el(parent, last, text)


def _text(value: str, limit: int) -> str:
    cleaned = " ".join(value.split())[:limit]
    return cleaned or "-"


def pain001(batch: Batch) -> bytes:
    """The batch as one pain.001.001.09 message with one payment information block, validated."""
    if not batch.transfers:
        raise ValueError("a credit-transfer message needs at least one transfer")
    count = str(len(batch.transfers))
    total = decimal_text(sum(t.amount_minor for t in batch.transfers), batch.currency)
    root = ET.Element(f"{{{PAIN_NS}}}Document")
    initiation = _el(root, "CstmrCdtTrfInitn")
    header = _el(initiation, "GrpHdr")
    _el(header, "MsgId", _text(batch.message_id, 35))
    _el(header, "CreDtTm", batch.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _el(header, "NbOfTxs", count)
    _el(header, "CtrlSum", total)
    _path(header, "InitgPty/Nm", _text(batch.debtor_name, 140))

    info = _el(initiation, "PmtInf")
    _el(info, "PmtInfId", _text(batch.message_id, 35))
    _el(info, "PmtMtd", "TRF")
    _el(info, "BtchBookg", "true")
    _el(info, "NbOfTxs", count)
    _el(info, "CtrlSum", total)
    if batch.currency == "EUR":
        _path(info, "PmtTpInf/SvcLvl/Cd", "SEPA")
    _path(info, "ReqdExctnDt/Dt", batch.execution_date.isoformat())
    _path(info, "Dbtr/Nm", _text(batch.debtor_name, 140))
    debtor_account = _el(info, "DbtrAcct")
    _path(debtor_account, "Id/IBAN", batch.debtor_iban)
    _el(debtor_account, "Ccy", batch.currency)
    _path(info, "DbtrAgt/FinInstnId/BICFI", batch.debtor_bic)
    _el(info, "ChrgBr", "SLEV" if batch.currency == "EUR" else "SHAR")
    for transfer in batch.transfers:
        tx = _el(info, "CdtTrfTxInf")
        ids = _el(tx, "PmtId")
        _el(ids, "InstrId", _text(transfer.instruction_id, 35))
        _el(ids, "EndToEndId", _text(transfer.end_to_end_id, 35))
        amount = _el(tx, "Amt")
        _el(
            amount,
            "InstdAmt",
            decimal_text(transfer.amount_minor, batch.currency),
            Ccy=batch.currency,
        )
        if transfer.creditor_bic:
            _path(tx, "CdtrAgt/FinInstnId/BICFI", transfer.creditor_bic)
        _path(tx, "Cdtr/Nm", _text(transfer.creditor_name, 140))
        _path(tx, "CdtrAcct/Id/IBAN", transfer.creditor_iban)
        _path(tx, "RmtInf/Ustrd", _text(transfer.remittance, 140))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    document = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode()
    problems = pain001_problems(document)
    if problems:
        raise ExportInvalid(
            _(
                "The payout file failed validation and was not released: %(problems)s",
                problems="; ".join(problems[:5]),
            )
        )
    return document


@lru_cache(maxsize=1)
def pain001_schema() -> xmlschema.XMLSchema:
    """The official ISO 20022 schema, as shipped in the `sepaxml` package."""
    source = resources.files("sepaxml") / "schemas" / f"{PAIN_VERSION}.xsd"
    with resources.as_file(source) as path:
        return xmlschema.XMLSchema(str(path))


def pain001_problems(document: bytes) -> list[str]:
    """Everything wrong with a pain.001.001.09 document: XSD violations, and counts or control
    sums that differ from the transfers (the XSD cannot check those). Empty when valid."""
    try:
        root = ET.fromstring(document)  # noqa: S314 - our own output, or a test's
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    problems = [
        f"{error.path or '/'}: {error.reason or error}".replace(f"{{{PAIN_NS}}}", "")
        for error in pain001_schema().iter_errors(root)
    ]
    if problems:
        return problems
    ns = {"p": PAIN_NS}
    amounts = [
        Decimal(a.text or "") for a in root.iterfind(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns)
    ]
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    assert header is not None
    problems.extend(_control_problems("GrpHdr", header, amounts, ns))
    for info in root.iterfind("p:CstmrCdtTrfInitn/p:PmtInf", ns):
        own = [Decimal(a.text or "") for a in info.iterfind("p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns)]
        problems.extend(_control_problems("PmtInf", info, own, ns))
    return problems


def _control_problems(
    where: str, block: ET.Element, amounts: list[Decimal], ns: dict[str, str]
) -> list[str]:
    problems = []
    count = block.findtext("p:NbOfTxs", namespaces=ns)
    if count is not None and int(count) != len(amounts):
        problems.append(f"{where}/NbOfTxs is {count} but there are {len(amounts)} transfers")
    control = block.findtext("p:CtrlSum", namespaces=ns)
    if control is not None and Decimal(control) != sum(amounts, Decimal(0)):
        problems.append(f"{where}/CtrlSum is {control} but the transfers sum to {sum(amounts)}")
    return problems
