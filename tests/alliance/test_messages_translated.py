"""The alliance's problems answer in the caller's language: Simplified Chinese, or English as before."""

from __future__ import annotations

import pytest

from beyondbank.alliance import lifecycle, membership
from beyondbank.alliance.models import Merchant, MerchantStatus
from beyondbank.core.errors import InvalidTransition, NotFound
from beyondbank.core.uow import UnitOfWork
from tests.translated import chinese, speaking


def test_a_missing_member_is_not_found_in_chinese_and_in_english(uow: UnitOfWork) -> None:
    with speaking("zh_CN"):
        with pytest.raises(NotFound) as problem:
            membership.get_member(uow, "mem_nobody")
        body = problem.value.as_dict()  # as the request answers, in its language
    assert body["detail"] == chinese("No member %(public_id)r here.", public_id="mem_nobody")
    assert body["title"] == chinese("Not found")

    with pytest.raises(NotFound) as problem:
        membership.get_member(uow, "mem_nobody")
    assert problem.value.detail == "No member 'mem_nobody' here."
    assert problem.value.as_dict()["title"] == "Not found"


def test_a_refused_merchant_transition_names_the_states_in_chinese() -> None:
    merchant = Merchant(public_id="mer_demo", status=MerchantStatus.APPLIED)
    may_become = ", ".join(sorted(s.value for s in lifecycle.TRANSITIONS[MerchantStatus.APPLIED]))
    with speaking("zh_CN"), pytest.raises(InvalidTransition) as problem:
        lifecycle.check_transition(merchant, MerchantStatus.ACTIVE)
    assert problem.value.detail == chinese(
        "Merchant %(merchant)s is %(current)s: it cannot become %(to)s "
        "(from %(current)s it may become %(options)s).",
        merchant="mer_demo",
        current="applied",
        to="active",
        options=may_become,
    )

    with pytest.raises(InvalidTransition) as problem:
        lifecycle.check_transition(merchant, MerchantStatus.ACTIVE)
    assert problem.value.detail == (
        f"Merchant mer_demo is applied: it cannot become active (from applied it may become "
        f"{may_become})."
    )
