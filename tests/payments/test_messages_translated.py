"""The payments' refusals reach the caller in the caller's language (zh_CN from the catalog),
words put into a sentence (what cannot be done) included; English exactly as before."""

from __future__ import annotations

from beyondbank.core.i18n import catalog, use_language
from beyondbank.payments.gateway import OperationKind, PaymentStatus, refuse

REFUSED = "Payment %(payment_id)s is %(current)s: it cannot be %(past)s.%(hint)s"
CAN_BE = "From %(status)s it can be: %(allowed)s."


def test_a_payment_that_cannot_be_refunded_is_refused_in_chinese() -> None:
    use_language("zh_CN")
    try:
        refused = refuse(PaymentStatus.AUTHORISED, OperationKind.REFUND, "pay_1")
    finally:
        use_language("en")

    zh = catalog("zh_CN")
    hint = " " + zh.gettext(CAN_BE) % {"status": "authorised", "allowed": "capture, expire, void"}
    assert refused.detail == zh.gettext(REFUSED) % {
        "payment_id": "pay_1",
        "current": "authorised",
        "past": zh.gettext("refunded"),
        "hint": hint,
    }
    assert refused.detail != REFUSED % {
        "payment_id": "pay_1",
        "current": "authorised",
        "past": "refunded",
        "hint": " From authorised it can be: capture, expire, void.",
    }


def test_the_same_refusal_in_english_is_unchanged() -> None:
    refused = refuse(PaymentStatus.AUTHORISED, OperationKind.REFUND, "pay_1")

    assert refused.detail == (
        "Payment pay_1 is authorised: it cannot be refunded. "
        "From authorised it can be: capture, expire, void."
    )
