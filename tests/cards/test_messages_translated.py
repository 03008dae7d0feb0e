"""Card-linked refusals reach the caller in the caller's language (zh_CN from the catalog), and
in English exactly as before."""

from __future__ import annotations

import pytest

from beyondbank.cards import service
from beyondbank.core.authz import SYSTEM
from beyondbank.core.errors import NotFound
from beyondbank.core.i18n import catalog, use_language
from beyondbank.core.uow import UnitOfWork

NO_RUN = "No card-linked run %(public_id)r."


def test_an_unknown_run_is_refused_in_chinese(uow: UnitOfWork) -> None:
    use_language("zh_CN")
    try:
        with pytest.raises(NotFound) as refused:
            service.get_run(uow, SYSTEM, "crun_nowhere")
    finally:
        use_language("en")

    expected = catalog("zh_CN").gettext(NO_RUN) % {"public_id": "crun_nowhere"}
    assert refused.value.detail == expected
    assert expected != NO_RUN % {"public_id": "crun_nowhere"}


def test_the_same_refusal_in_english_is_unchanged(uow: UnitOfWork) -> None:
    with pytest.raises(NotFound) as refused:
        service.get_run(uow, SYSTEM, "crun_nowhere")

    assert refused.value.detail == "No card-linked run 'crun_nowhere'."
