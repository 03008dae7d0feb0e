"""Ledger statements as CSV: an opening row, one per posting with its running balance, a closing."""

from __future__ import annotations

import csv
import io

from beyondbank.ledger.schemas import decimal_string
from beyondbank.ledger.service import Statement

CSV_COLUMNS = (
    "effective_at",
    "transaction_id",
    "kind",
    "description",
    "reference",
    "debit",
    "credit",
    "balance",
    "currency",
)


def statement_csv(statement: Statement) -> str:
    """The statement as CSV text (CRLF rows); text cells never run as spreadsheet formulas."""
    currency = statement.account.currency

    def text(amount: int) -> str:
        return decimal_string(amount, currency)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(
        [
            statement.start.isoformat(),
            "",
            "opening",
            "Opening balance",
            "",
            "",
            "",
            text(statement.opening.amount),
            currency,
        ]
    )
    for line in statement.lines:
        writer.writerow(
            [
                line.effective_at.isoformat(),
                line.transaction_id,
                _cell(line.kind),
                _cell(line.description),
                _cell(line.reference or ""),
                text(line.debit),
                text(line.credit),
                text(line.balance),
                currency,
            ]
        )
    writer.writerow(
        [
            statement.end.isoformat(),
            "",
            "closing",
            "Closing balance",
            "",
            text(statement.total_debits),
            text(statement.total_credits),
            text(statement.closing.amount),
            currency,
        ]
    )
    return buffer.getvalue()


def statement_filename(statement: Statement) -> str:
    """`statement-<account>-<from>-<to>.csv`, the times in UTC's basic format."""
    return (
        f"statement-{statement.account.public_id}-"
        f"{statement.start:%Y%m%dT%H%M%SZ}-{statement.end:%Y%m%dT%H%M%SZ}.csv"
    )


def _cell(value: str) -> str:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
