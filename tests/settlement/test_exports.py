"""Statement exports render from stored content only; the PDF's fonts need Latin-1 text."""

from __future__ import annotations

from beyondbank.settlement import exports


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
