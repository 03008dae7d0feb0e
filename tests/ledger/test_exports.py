"""Statement CSV renders from the statement alone; text cells never run as formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from beyondbank.core.money import Money
from beyondbank.ledger import exports, service
from beyondbank.ledger.models import Account

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def _statement(*lines: service.StatementLine) -> service.Statement:
    account = Account(public_id="acc_1", currency="GBP")
    closing = lines[-1].balance if lines else 1000
    return service.Statement(
        account, START, END, Money(1000, "GBP"), tuple(lines), Money(closing, "GBP")
    )


def test_formula_text_is_quoted_and_the_rest_left_alone() -> None:
    for formula in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert exports._cell(formula) == f"'{formula}"
    assert exports._cell("top-up") == "top-up"
    assert exports._cell("") == ""


def test_a_statement_renders_opening_lines_and_closing() -> None:
    line = service.StatementLine(
        "ltx_1", datetime(2026, 11, 2, tzinfo=UTC), "pool.draw", "=HYPERLINK(1)", None, 250, 0, 750
    )
    text = exports.statement_csv(_statement(line))
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        list(exports.CSV_COLUMNS),
        [START.isoformat(), "", "opening", "Opening balance", "", "", "", "10.00", "GBP"],
        [
            "2026-11-02T00:00:00+00:00",
            "ltx_1",
            "pool.draw",
            "'=HYPERLINK(1)",
            "",
            "2.50",
            "0.00",
            "7.50",
            "GBP",
        ],
        [END.isoformat(), "", "closing", "Closing balance", "", "2.50", "0.00", "7.50", "GBP"],
    ]


def test_the_file_is_named_for_the_account_and_period() -> None:
    assert exports.statement_filename(_statement()) == (
        "statement-acc_1-20261101T000000Z-20261122T103000Z.csv"
    )
