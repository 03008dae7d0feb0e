"""Core problems answer in the caller's language: a malformed member code, field message included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from beyondbank.core.errors import InvalidInput
from beyondbank.core.tokens import CODE_DIGITS, MEMBER_NUMBER_DIGITS, verify_member_code
from tests.translated import chinese, speaking

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_a_malformed_member_code_is_refused_in_chinese_and_in_english() -> None:
    digits = MEMBER_NUMBER_DIGITS + CODE_DIGITS
    with speaking("zh_CN"):
        with pytest.raises(InvalidInput) as problem:
            verify_member_code("secret", "12-ab", now=NOW, field="body.code")
        body = problem.value.as_dict()  # as the request answers, in its language
    assert body["detail"] == chinese("The member code is malformed.")
    assert body["title"] == chinese("The request has invalid fields")
    assert body["errors"] == [
        {"field": "body.code", "message": chinese("expected %(count)s digits", count=digits)}
    ]

    with pytest.raises(InvalidInput) as problem:
        verify_member_code("secret", "12-ab", now=NOW, field="body.code")
    body = problem.value.as_dict()
    assert body["detail"] == "The member code is malformed."
    assert body["title"] == "The request has invalid fields"
    assert body["errors"] == [{"field": "body.code", "message": f"expected {digits} digits"}]
