"""The member's real-time message reads as a sentence whatever the reward holds."""

from __future__ import annotations

import pytest

from beyondbank.cards import frames
from beyondbank.cards.realtime import Earned, _message


def _earned(amount_minor: int, points: int) -> Earned:
    row = {"kind": frames.REWARD, "amount_minor": amount_minor, "currency": "GBP", "points": points}
    return Earned(row=row, member="mbr_1", merchant="mer_1", benefit=None, points_benefit=None)


@pytest.mark.parametrize(
    ("amount_minor", "points", "message"),
    [
        (800, 40, "You just earned £8.00 cashback and 40 points at Harbour Noodle Bar."),
        (800, 0, "You just earned £8.00 cashback at Harbour Noodle Bar."),
        (0, 40, "You just earned 40 points at Harbour Noodle Bar."),
        (0, 0, "You just earned a reward at Harbour Noodle Bar."),
    ],
)
def test_the_message_names_what_was_earned(amount_minor: int, points: int, message: str) -> None:
    assert _message([_earned(amount_minor, points)], "Harbour Noodle Bar") == message
