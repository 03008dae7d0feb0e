"""The ledger's refusals reach the caller in the caller's language (zh_CN from the catalog), and
in English exactly as before."""

from __future__ import annotations

import pytest

from beyondbank.core.errors import NotFound
from beyondbank.core.i18n import catalog, use_language
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import schemas
from beyondbank.ledger import service as ledger

NO_ACCOUNT = "No ledger account %(public_id)r."
NOT_A_STRING = 'give the amount as a string such as "12.50", not a JSON number'


def test_an_unknown_account_is_refused_in_chinese(uow: UnitOfWork) -> None:
    use_language("zh_CN")
    try:
        with pytest.raises(NotFound) as refused:
            ledger.account_by_public_id(uow, "acc_nowhere")
        with pytest.raises(ValueError, match=r".") as bad_amount:
            schemas.parse_amount(12.5, "GBP")
    finally:
        use_language("en")

    zh = catalog("zh_CN")
    assert refused.value.detail == zh.gettext(NO_ACCOUNT) % {"public_id": "acc_nowhere"}
    assert refused.value.detail != NO_ACCOUNT % {"public_id": "acc_nowhere"}
    assert str(bad_amount.value) == zh.gettext(NOT_A_STRING)


def test_the_same_refusal_in_english_is_unchanged(uow: UnitOfWork) -> None:
    with pytest.raises(NotFound) as refused:
        ledger.account_by_public_id(uow, "acc_nowhere")

    assert refused.value.detail == "No ledger account 'acc_nowhere'."
    with pytest.raises(ValueError, match="not a JSON number"):
        schemas.parse_amount(12.5, "GBP")
