"""Statement exports render from stored content only; the PDF's fonts need Latin-1 text."""

from __future__ import annotations

from beyondbank.settlement import exports, statements


def test_pdf_text_keeps_latin1_and_folds_the_rest() -> None:
    assert exports._latin1("Café Zoë — “Łódź”") == 'Café Zoë - "?ódz"'
    assert exports._latin1("智慧银商") == "????"


def test_amounts_are_exact_decimals_in_the_currencys_digits() -> None:
    assert exports.decimal_text(123_456, "GBP") == "1234.56"
    assert exports.decimal_text(5, "GBP") == "0.05"
    assert exports.decimal_text(-5, "GBP") == "-0.05"
    assert exports.decimal_text(1_000, "JPY") == "1000"
    assert exports.decimal_text(1_000, "BHD") == "1.000"
    assert exports.decimal_text(10**15, "EUR") == "10000000000000.00"


def test_csv_text_cells_never_run_as_formulas() -> None:
    content = _content(party_name='=HYPERLINK("http://x","pay me")')
    rows = exports.statement_csv("stm_1", "0" * 64, content).decode().splitlines()
    name = next(r for r in rows if r.startswith("period,party_name,"))
    assert name == 'period,party_name,"\'=HYPERLINK(""http://x"",""pay me"")",,,,,'
    net = next(r for r in rows if r.startswith("total,net,"))
    assert net.endswith(",-100,-1.00")  # numbers stay numbers


def _content(party_name: str) -> dict[str, object]:
    terms = statements.Terms("ctv_1", 1, "2026-09-01", 0, {}, (), (), 0, 0, 100)
    computed = statements.compute(statements.Inputs("GBP", terms, (), 0))
    return {
        **computed.content,
        "period": {
            "id": "stp_1",
            "party_kind": "merchant",
            "party_id": "mer_1",
            "party_name": party_name,
            "starts_on": "2026-09-01",
            "ends_on": "2026-10-01",
            "timezone": "Europe/London",
        },
        "settlement": {"transaction_id": None, "closed_at": "2026-10-02T00:00:00+00:00"},
    }
