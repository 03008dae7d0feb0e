"""Volume tiers: which tier a total reaches, what is left to the next one, what a close refunds.

Pure functions over `(min_units, unit_minor)` pairs, so the pricing rules are tested on their
own (property tests) and shared by live progress, the close and the purchase order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from beyondbank.core.errors import FieldError
from beyondbank.core.i18n import _


@dataclass(frozen=True, slots=True, order=True)
class Tier:
    min_units: int  # from this many units in total…
    unit_minor: int  # …every unit costs this


def ordered(tiers: Sequence[Tier]) -> list[Tier]:
    return sorted(tiers, key=lambda t: t.min_units)


def entry(tiers: Sequence[Tier]) -> Tier:
    """The tier a customer pays when joining: the one with the fewest units."""
    return ordered(tiers)[0]


def reached(tiers: Sequence[Tier], total: int) -> Tier | None:
    """The highest tier whose `min_units` the total reaches; None below the entry tier."""
    best: Tier | None = None
    for tier in ordered(tiers):
        if tier.min_units <= total:
            best = tier
    return best


def following(tiers: Sequence[Tier], total: int) -> Tier | None:
    """The next tier the total has not reached yet; None when the best tier is reached."""
    for tier in ordered(tiers):
        if tier.min_units > total:
            return tier
    return None


def final_unit_minor(tiers: Sequence[Tier], total: int) -> int:
    """The unit price a close settles on: the reached tier's, else (nobody reached even the
    entry tier, which only happens with no units at all) the entry price."""
    tier = reached(tiers, total)
    return (tier or entry(tiers)).unit_minor


def difference_refund(quantity: int, paid_unit_minor: int, final_unit: int) -> int:
    """What an order that paid `paid_unit_minor` a unit gets back at the final price."""
    return quantity * max(paid_unit_minor - final_unit, 0)


def check(tiers: Sequence[Tier], public_minor: int, path: str = "body.tiers") -> list[FieldError]:
    """Every reason the tiers are unusable: the entry tier starts at one unit, units strictly
    increase and prices strictly decrease from tier to tier, and every price is positive and
    below the product's public price. Tiers are checked in the order given."""
    errors: list[FieldError] = []
    if not tiers:
        return [FieldError(path, _("at least one tier is needed"))]
    if tiers[0].min_units != 1:
        errors.append(
            FieldError(f"{path}.0.min_units", _("the first (entry) tier must start at 1 unit"))
        )
    for i, tier in enumerate(tiers):
        if tier.min_units < 1:
            errors.append(FieldError(f"{path}.{i}.min_units", _("must be at least 1")))
        if tier.unit_minor <= 0:
            errors.append(FieldError(f"{path}.{i}.unit_price", _("must be greater than zero")))
        elif tier.unit_minor >= public_minor:
            errors.append(
                FieldError(
                    f"{path}.{i}.unit_price",
                    _(
                        "must be below the product's public price (%(public_minor)s minor units)",
                        public_minor=public_minor,
                    ),
                )
            )
        if i > 0:
            before = tiers[i - 1]
            if tier.min_units <= before.min_units:
                errors.append(
                    FieldError(
                        f"{path}.{i}.min_units",
                        _(
                            "must be more than the previous tier's %(min_units)s",
                            min_units=before.min_units,
                        ),
                    )
                )
            if tier.unit_minor >= before.unit_minor:
                errors.append(
                    FieldError(
                        f"{path}.{i}.unit_price", _("must be lower than the previous tier's price")
                    )
                )
    return errors
