"""The bank's own products offered at checkout: 0% instalments and device protection.

Instalments: 3, 6 or 12 monthly payments of the order's total, each the floor of total / months,
the remainder on the first, so they sum exactly to the total; the first falls due one month after
the order (on the same day of the month, or the month's last day when it has fewer days).

Device protection, underwritten by the bank's insurance partner: a premium per unit by the
unit's bank-client price band (below); the part of an order's premium that covers some of its
units (those returned) is pro rata to those units' premiums.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from beyondbank.core.money import pro_rata

INSTALMENT_MONTHS = (3, 6, 12)
INSURER = "Harbour Mutual Insurance"

# (unit price up to and including, premium per unit), in minor units; above the last band the
# premium is 5% of the unit price (rounded down).
PROTECTION_BANDS: tuple[tuple[int, int], ...] = (
    (5_000, 299),
    (20_000, 799),
    (50_000, 1_499),
)
PROTECTION_TOP_BPS = 500


@dataclass(frozen=True, slots=True)
class Instalment:
    due: date
    amount_minor: int


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def instalment_plan(total_minor: int, months: int, placed_on: date) -> list[Instalment]:
    """`months` payments summing exactly to `total_minor`, the remainder on the first."""
    if months not in INSTALMENT_MONTHS:
        raise ValueError(f"instalments are over {INSTALMENT_MONTHS} months, not {months}")
    if total_minor <= 0:
        raise ValueError("an instalment plan needs a positive total")
    each, remainder = divmod(total_minor, months)
    return [
        Instalment(add_months(placed_on, k + 1), each + (remainder if k == 0 else 0))
        for k in range(months)
    ]


def protection_premium(unit_minor: int) -> int:
    """The device-protection premium for one unit at this price."""
    for up_to, premium in PROTECTION_BANDS:
        if unit_minor <= up_to:
            return premium
    return unit_minor * PROTECTION_TOP_BPS // 10_000


def protection_for(lines: list[tuple[int, int]]) -> int:
    """The premium for (unit price, quantity) lines."""
    return sum(protection_premium(unit) * quantity for unit, quantity in lines)


def protection_share(premium_minor: int, lines: Sequence[tuple[int, int, int]]) -> int:
    """The part of an order's premium covering `part` of each (unit price, quantity, part) line:
    `floor(premium × part's premiums / all units' premiums)`, each unit weighed by its band's
    premium. Exact when the premium was priced by these bands; otherwise the parts still never
    exceed the whole, and the units not in `part` keep the remainder."""
    whole = sum(protection_premium(unit) * quantity for unit, quantity, _part in lines)
    some = sum(protection_premium(unit) * part for unit, _quantity, part in lines)
    return pro_rata(premium_minor, some, whole) if whole else 0
