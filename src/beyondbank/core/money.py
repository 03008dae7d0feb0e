"""Money as integer minor units with an ISO 4217 currency (or `PTS` for points), and exact splits.

Every split rounds down per line and gives the remainder to one named party, so the parts
always add up to the whole. Decimals appear only at the edges: parsing input and display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

POINTS = "PTS"
BPS_WHOLE = 10_000


@lru_cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies()) | {POINTS}


def is_currency(code: str) -> bool:
    return code in _known_currencies()


def minor_digits(currency: str) -> int:
    """How many decimal places the currency's minor unit has (GBP 2, JPY 0, PTS 0)."""
    if currency == POINTS:
        return 0
    return int(get_currency_precision(currency))


def check_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"unknown currency {code!r}: expected an ISO 4217 code or {POINTS}")
    return code


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int  # minor units
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount is an integer number of minor units")
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, value: str | Decimal, currency: str) -> Money:
        """Parse a decimal amount ("12.50") exactly; more decimals than the currency has is an error."""
        try:
            number = Decimal(value) if isinstance(value, str) else value
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        scaled = number.scaleb(minor_digits(check_currency(currency)))
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more decimal places than {currency} allows")
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-minor_digits(self.currency))

    def format(self, locale: str = "en_GB") -> str:
        if self.currency == POINTS:
            return f"{self.amount:,} pts"
        return str(format_currency(self.to_decimal(), self.currency, locale=locale))

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"


def bps_of(amount: int, bps: int) -> int:
    """floor(amount × bps / 10000) for a non-negative amount."""
    _non_negative(amount)
    if not 0 <= bps <= BPS_WHOLE:
        raise ValueError(f"basis points must be within 0..{BPS_WHOLE}, got {bps}")
    return amount * bps // BPS_WHOLE


def split_bps(amount: int, bps: int) -> tuple[int, int]:
    """Split into (floor share at `bps`, the rest): the second party takes the remainder."""
    share = bps_of(amount, bps)
    return share, amount - share


def pro_rata(amount: int, numerator: int, denominator: int) -> int:
    """floor(amount × numerator / denominator), for pro-rata refunds and clawbacks."""
    _non_negative(amount)
    if denominator <= 0 or numerator < 0:
        raise ValueError("pro rata needs a positive denominator and a non-negative numerator")
    return amount * numerator // denominator


def allocate(amount: int, weights: Sequence[int], remainder_to: int) -> list[int]:
    """Split by weights, each line rounded down; the remainder goes to line `remainder_to`."""
    _non_negative(amount)
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    if not 0 <= remainder_to < len(weights):
        raise ValueError("remainder_to must index one of the weights")
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    parts[remainder_to] += amount - sum(parts)
    return parts


def _non_negative(amount: int) -> None:
    if amount < 0:
        raise ValueError("splits are defined for non-negative amounts")
