"""The shop's refusals reach the caller in the caller's language (zh_CN from the catalog), and
in English exactly as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beyondbank.commerce.models import OrderStatus
from beyondbank.commerce.orders import transitions
from beyondbank.commerce.webhooks.service import check_url
from beyondbank.core.i18n import catalog, use_language

ORDER_REFUSED = "Order %(order_id)s is %(current)s: it cannot become %(target)s.%(hint)s"
CAN_GO_TO = "From %(status)s it can go to: %(options)s."
NOT_A_URL = "not a URL"


@pytest.fixture
def chinese() -> Iterator[None]:
    use_language("zh_CN")
    try:
        yield
    finally:
        use_language("en")


@pytest.mark.usefixtures("chinese")
def test_an_order_that_cannot_move_is_refused_in_chinese() -> None:
    zh = catalog("zh_CN")
    hint = " " + zh.gettext(CAN_GO_TO) % {"status": "shipped", "options": "delivered"}

    refused = transitions.refuse(OrderStatus.SHIPPED, OrderStatus.PAID, "ord_1")

    assert refused.detail == zh.gettext(ORDER_REFUSED) % {
        "order_id": "ord_1",
        "current": "shipped",
        "target": "paid",
        "hint": hint,
    }
    assert refused.detail != ORDER_REFUSED % {
        "order_id": "ord_1",
        "current": "shipped",
        "target": "paid",
        "hint": " From shipped it can go to: delivered.",
    }


@pytest.mark.usefixtures("chinese")
def test_a_webhook_url_refusal_is_in_chinese() -> None:
    assert check_url("https://", production=True) == catalog("zh_CN").gettext(
        "not an absolute URL with a host"
    )
    assert catalog("zh_CN").gettext(NOT_A_URL) != NOT_A_URL


def test_the_same_refusals_in_english_are_unchanged() -> None:
    refused = transitions.refuse(OrderStatus.SHIPPED, OrderStatus.PAID, "ord_1")

    assert refused.detail == (
        "Order ord_1 is shipped: it cannot become paid. From shipped it can go to: delivered."
    )
    assert check_url("https://", production=True) == "not an absolute URL with a host"
