"""Price integrity: a member benefit must be strictly better than what the merchant gives everyone.

The merchant declares what the public gets for the same goods, and the benefit is judged
against it. The rule, by kind:

- Price kinds (`percent_off`, `amount_off`, `spend_threshold`) declare the goods' regular
  price and what the public pays for them: a public price, a public discount (0 if none), or
  both (the public then pays the lower of the two). The member benefit replaces the public
  offer rather than adding to it, so the member's price on the declared goods — the regular
  price less the benefit's reward on it (nothing if it falls below the minimum spend or the
  spend threshold) — must be strictly lower than the public price. The seed case: a
  supermarket that gives everyone 10% off cannot offer members 10% off (members would pay
  £9.00 on £10.00, the same as everyone).
- Other kinds (`points_multiplier`, `gift`, `free_trial`, `event`) have no price to compare:
  the merchant declares whether everyone can get the same thing (`publicly_available`), and
  a benefit that everyone can have is no member benefit.
"""

from __future__ import annotations

from dataclasses import dataclass

from beyondbank.benefits.models import BenefitKind
from beyondbank.benefits.rules import RewardTerms, is_cash, reward_minor
from beyondbank.core.i18n import N_, _, format_locale
from beyondbank.core.money import Money, bps_of

REWARD_FIELDS = {
    "percent_off": ("percent_bps", "max_reward_minor"),
    "amount_off": ("fixed_minor",),
    "spend_threshold": ("threshold_minor", "fixed_minor"),
}
# What a benefit of a kind without a price gives, in words (translated where it is shown).
_WHAT = {
    BenefitKind.POINTS_MULTIPLIER: N_("points multiplier"),
    BenefitKind.GIFT: N_("gift"),
    BenefitKind.FREE_TRIAL: N_("free trial"),
    BenefitKind.EVENT: N_("event"),
}


@dataclass(frozen=True, slots=True)
class PriceDeclaration:
    """What the merchant says everyone gets for the same goods."""

    regular_price_minor: int | None = None
    public_price_minor: int | None = None
    public_discount_bps: int | None = None
    publicly_available: bool | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    reason: str
    fields: tuple[str, ...] = ()  # the request fields the reason is about
    member_price_minor: int | None = None
    public_price_minor: int | None = None


def public_price(declaration: PriceDeclaration) -> tuple[int, str] | None:
    """The lowest price anyone pays for the declared goods, and which field sets it."""
    regular = declaration.regular_price_minor
    if regular is None:
        return None
    candidates = [(regular, "regular_price_minor")]
    if declaration.public_price_minor is not None:
        candidates.append((declaration.public_price_minor, "public_price_minor"))
    if declaration.public_discount_bps is not None:
        discounted = regular - bps_of(regular, declaration.public_discount_bps)
        candidates.append((discounted, "public_discount_bps"))
    # On a tie the explicit public offer is named, since that is what the benefit must beat.
    return min(candidates, key=lambda c: (c[0], c[1] == "regular_price_minor"))


def member_price(reward: RewardTerms, regular_price_minor: int, min_spend_minor: int) -> int:
    """What a member pays for the declared goods with the benefit."""
    if regular_price_minor < min_spend_minor:
        return regular_price_minor
    return regular_price_minor - reward_minor(reward, regular_price_minor)


def check_price_integrity(
    reward: RewardTerms, currency: str, min_spend_minor: int, declaration: PriceDeclaration
) -> Verdict:
    if is_cash(reward.kind):
        return _check_price_kind(reward, currency, min_spend_minor, declaration)
    return _check_exclusive_kind(reward, declaration)


def _check_price_kind(
    reward: RewardTerms, currency: str, min_spend_minor: int, declaration: PriceDeclaration
) -> Verdict:
    regular = declaration.regular_price_minor
    if regular is None:
        return Verdict(
            False,
            _(
                "Declare the regular price of the goods the benefit applies to, so that the bank "
                "can check that members get a better price than everyone else."
            ),
            ("regular_price_minor",),
        )
    if declaration.public_price_minor is None and declaration.public_discount_bps is None:
        return Verdict(
            False,
            _(
                "Declare what the public pays for the same goods: a public price, or a public "
                "discount (0 if everyone pays the regular price)."
            ),
            ("public_price_minor", "public_discount_bps"),
        )
    if declaration.public_price_minor is not None and declaration.public_price_minor > regular:
        return Verdict(
            False,
            _("The public price cannot be above the regular price of the same goods."),
            ("public_price_minor",),
        )
    best = public_price(declaration)
    assert best is not None  # the regular price is declared
    public, public_field = best
    member = member_price(reward, regular, min_spend_minor)

    def fmt(minor: int) -> str:
        return Money(minor, currency).format(format_locale())

    if member < public:
        return Verdict(
            True,
            _(
                "Members pay %(member)s on %(regular)s; everyone else pays %(public)s.",
                member=fmt(member),
                regular=fmt(regular),
                public=fmt(public),
            ),
            member_price_minor=member,
            public_price_minor=public,
        )
    comparison = (
        _("the same as everyone")
        if member == public
        else _("more than everyone (%(public)s)", public=fmt(public))
    )
    offer = _public_offer(declaration, public_field, currency)
    sentences = [
        _(
            "Members would pay %(member)s on %(regular)s, %(comparison)s%(offer)s.",
            member=fmt(member),
            regular=fmt(regular),
            comparison=comparison,
            offer=f" {offer}" if offer else "",
        ),
        _why_no_better(reward, regular, min_spend_minor, currency),
        _("A member benefit must be strictly better than what the merchant offers the public."),
    ]
    return Verdict(
        False,
        " ".join(sentence for sentence in sentences if sentence),
        (*REWARD_FIELDS[reward.kind.value], public_field),
        member_price_minor=member,
        public_price_minor=public,
    )


def _public_offer(declaration: PriceDeclaration, field: str, currency: str) -> str:
    if field == "public_discount_bps" and declaration.public_discount_bps:
        return _(
            "(everyone gets %(percent)s off)",
            percent=f"{declaration.public_discount_bps / 100:g}%",
        )
    if field == "public_price_minor" and declaration.public_price_minor is not None:
        price = Money(declaration.public_price_minor, currency).format(format_locale())
        return _("(the public price is %(price)s)", price=price)
    return ""


def _why_no_better(reward: RewardTerms, regular: int, min_spend: int, currency: str) -> str:
    """A hint when the benefit gives nothing at all on the declared goods."""
    locale = format_locale()
    goods = Money(regular, currency).format(locale)
    if regular < min_spend:
        return _(
            "The goods (%(goods)s) are below the minimum spend (%(minimum)s), so members get "
            "nothing on them.",
            goods=goods,
            minimum=Money(min_spend, currency).format(locale),
        )
    threshold = reward.threshold_minor
    if threshold is not None and regular < threshold:
        return _(
            "The goods (%(goods)s) do not reach the spend threshold (%(threshold)s): declare the "
            "price of a basket that does.",
            goods=goods,
            threshold=Money(threshold, currency).format(locale),
        )
    return ""


def _check_exclusive_kind(reward: RewardTerms, declaration: PriceDeclaration) -> Verdict:
    what = _(_WHAT[reward.kind])
    if declaration.publicly_available is None:
        return Verdict(
            False,
            _(
                "Declare whether everyone can get the same %(what)s without being a member.",
                what=what,
            ),
            ("publicly_available",),
        )
    if declaration.publicly_available:
        return Verdict(
            False,
            _(
                "Everyone can already get this %(what)s without being a member, so it is no "
                "member benefit. A member benefit must be strictly better than what the merchant "
                "offers the public.",
                what=what,
            ),
            ("publicly_available",),
        )
    return Verdict(True, _("Only members get this %(what)s.", what=what))
