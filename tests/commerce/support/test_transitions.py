"""The ticket's transition table, walked by hypothesis against the rules as the issue states them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beyondbank.commerce.models import TicketStatus
from beyondbank.commerce.support.service import TRANSITIONS, Action, transition
from beyondbank.core.errors import InvalidTransition

S = TicketStatus


def expected(status: TicketStatus, action: Action) -> TicketStatus | None:
    """The rules in words: a partner's answer → answered; the customer's reply → open; either
    may resolve; a resolved ticket is closed; the bank's word moves nothing; closed is final;
    a resolved ticket takes no partner answer."""
    if status == S.CLOSED:
        return None
    if action == Action.CLOSE:
        return S.CLOSED if status == S.RESOLVED else None
    if action == Action.RESOLVE:
        return S.RESOLVED if status in (S.OPEN, S.ANSWERED) else None
    if action == Action.PARTNER_MESSAGE:
        return None if status == S.RESOLVED else S.ANSWERED
    if action == Action.CUSTOMER_MESSAGE:
        return S.OPEN
    return status  # the bank's message


@given(st.lists(st.sampled_from(list(Action)), max_size=30))
def test_every_walk_follows_the_rules(actions: list[Action]) -> None:
    status = S.OPEN
    for action in actions:
        want = expected(status, action)
        if want is None:
            with pytest.raises(InvalidTransition) as refused:
                transition(status, action)
            assert refused.value.extra == {"current_status": status.value}
        else:
            status = transition(status, action)
            assert status == want


def test_the_table_names_only_allowed_moves() -> None:
    for (status, action), target in TRANSITIONS.items():
        assert expected(status, action) == target
    allowed = {(s, a) for s in S for a in Action if expected(s, a) is not None}
    assert allowed == set(TRANSITIONS)
