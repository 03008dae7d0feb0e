"""Signing in is refused in the caller's language: Simplified Chinese, or English as before."""

from __future__ import annotations

import pytest

from beyondbank.core.errors import Unauthenticated
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service
from tests.translated import chinese, speaking


def test_a_wrong_password_is_refused_in_chinese_and_in_english(uow: UnitOfWork) -> None:
    with speaking("zh_CN"):
        with pytest.raises(Unauthenticated) as problem:
            service.authenticate_user(uow, "nobody@example.com", "not-the-password")
        body = problem.value.as_dict()  # as the request answers, in its language
    assert body["detail"] == chinese("The email or password is not right.")
    assert body["title"] == chinese("Authentication required")

    with pytest.raises(Unauthenticated) as problem:
        service.authenticate_user(uow, "nobody@example.com", "not-the-password")
    assert problem.value.detail == "The email or password is not right."
    assert problem.value.as_dict()["title"] == "Authentication required"
