"""The demo programme as a program document: the same format `beyondbank import` reads.

Deterministic for a seed: the same seed gives the same branches, merchants, members and
benefits (public ids and secrets still differ per run, as the services draw them).
"""

from __future__ import annotations

import math
import random
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from schwifty import IBAN

from beyondbank.alliance.taxonomy import taxonomy
from beyondbank.demo.catalogue import (
    DOMAIN_WORDS,
    EMAIL_DOMAIN,
    FIRST_NAMES,
    LAST_NAMES,
    PIPELINE,
    SEGMENTS,
    SHOPS,
    Prospect,
    Segment,
    Shop,
)
from beyondbank.demo.places import AREAS, OFFICES, Area

LONDON = "Europe/London"
CONSENT_VERSION = "alliance-terms-2026-01"
# The demo customer the bank app signs in: lives in Clapham, two young children, a car.
DEMO_CUSTOMER_REF = "THB10000001"
DEMO_CUSTOMER_NAME = "Amelia Clarke"
_METRES_PER_DEGREE = 111_320.0
_BANKS = ("NWBK", "BARC", "LOYD", "HBUK", "MIDL")
KINDS = (
    "percent_off",
    "amount_off",
    "spend_threshold",
    "points_multiplier",
    "gift",
    "free_trial",
    "event",
)
# What a card payment can earn: cash off the purchase, or points on it.
CARD_KINDS = ("percent_off", "amount_off", "spend_threshold", "points_multiplier")
# Seven kinds × seven channel sets: every kind is offered on every channel.
CHANNEL_SETS = (
    ["voucher"],
    ["card_linked"],
    ["online"],
    ["card_linked", "voucher"],
    ["voucher", "online"],
    ["card_linked", "online"],
    ["card_linked", "voucher", "online"],
)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("&", "and")).strip("-")


def demo_programme(
    *, members: int = 3000, seed: int = 2026, launch: date, today: date
) -> dict[str, Any]:
    """The whole demo programme: branches, circles, merchants, members and benefits.

    `launch` is when the programme went live (benefits start then); `today` decides the ages of
    businesses and how long benefits run.
    """
    rng = random.Random(seed)
    builder = _Builder(rng, launch, today)
    return {
        "format": "beyondbank-program/1",
        "description": "Thames & Harbour Bank alliance: the demo programme",
        "consent": {
            "text_version": CONSENT_VERSION,
            "granted_at": _instant(launch - timedelta(days=3), time(9)),
            "channel": "app",
        },
        "branches": [_branch(area) for area in AREAS],
        "circles": [_area_circle(area) for area in AREAS] + [_segment_circle(s) for s in SEGMENTS],
        "merchants": builder.merchants(),
        "members": [builder.member(i) for i in range(members)],
        "benefits": builder.benefits(),
    }


def _instant(day: date, at: time) -> str:
    return datetime.combine(day, at).isoformat() + "Z"


def _branch(area: Area) -> dict[str, Any]:
    return {
        "code": area.branch_code,
        "name": f"{area.name} branch",
        "address": area.address,
        "latitude": area.latitude,
        "longitude": area.longitude,
        "timezone": LONDON,
    }


_HIGH_STREET_RULES: list[dict[str, Any]] = [
    {"kind": "location_in_circle"},
    {"kind": "min_review_score", "params": {"min": 4.0}},
    {"kind": "licence_verified"},
    {"kind": "kyb_passed"},
    {"kind": "settlement_account"},
    {"kind": "slot_free"},
]


def _area_circle(area: Area) -> dict[str, Any]:
    requirements = list(_HIGH_STREET_RULES)
    if area.circle_code == "richmond":  # a stricter circle: established, visited businesses
        requirements += [
            {"kind": "min_years_trading", "params": {"years": 2}},
            {"kind": "manual_check", "label": "Premises visited by the relationship manager"},
        ]
    return {
        "code": area.circle_code,
        "name": f"{area.name} life circle",
        "description": f"Everyday life within 3 km of the {area.name} branch.",
        "kind": "geographic",
        "branch": area.branch_code,
        "radius_m": 3000,
        "requirements": requirements,
    }


def _segment_circle(segment: Segment) -> dict[str, Any]:
    requirements: list[dict[str, Any]] = [
        {"kind": "min_review_score", "params": {"min": segment.min_score}},
        {"kind": "kyb_passed"},
        {"kind": "slot_free"},
        {"kind": "sub_industry_allowed", "params": {"codes": list(segment.allowed)}},
    ]
    if segment.manual_check:
        requirements.append({"kind": "manual_check", "label": segment.manual_check})
    return {
        "code": segment.code,
        "name": segment.name,
        "description": segment.description,
        "kind": "segment",
        "segment_name": segment.segment_name,
        "segment_rule": segment.rule,
        "requirements": requirements,
    }


def _near(
    rng: random.Random, centre: tuple[float, float], max_m: float, min_m: float = 0.0
) -> dict[str, float]:
    """A point at a uniformly random place of the ring around the centre."""
    distance = math.sqrt(rng.uniform((min_m / max_m) ** 2, 1.0)) * max_m
    bearing = rng.uniform(0, 2 * math.pi)
    latitude = centre[0] + distance * math.cos(bearing) / _METRES_PER_DEGREE
    longitude = centre[1] + distance * math.sin(bearing) / (
        _METRES_PER_DEGREE * math.cos(math.radians(centre[0]))
    )
    return {"latitude": round(latitude, 5), "longitude": round(longitude, 5)}


class _Builder:
    def __init__(self, rng: random.Random, launch: date, today: date) -> None:
        self.rng = rng
        self.launch = launch
        self.today = today
        self.areas = {area.circle_code: area for area in AREAS}
        self.card_tokens: set[str] = set()
        self.terminal_count = 0
        self.merchant_count = 0
        self.shops: list[tuple[Shop, Area]] = []

    # -- merchants ---------------------------------------------------------------------------

    def merchants(self) -> list[dict[str, Any]]:
        merchants = []
        for code, shops in SHOPS.items():
            area = self.areas[code]
            for shop in shops:
                merchants.append(self._shop(shop, area))
                self.shops.append((shop, area))
        merchants += [self._prospect(p) for p in PIPELINE]
        return merchants

    def _base(self, name: str, sub_industry: str, area: Area) -> dict[str, Any]:
        rng = self.rng
        self.merchant_count += 1
        ref = slug(name)
        founded = self.today - timedelta(days=rng.randint(3 * 365, 25 * 365))
        legal = f"{name.removeprefix('The ')} Ltd"
        sub = taxonomy().sub_industry(sub_industry)
        assert sub is not None, sub_industry
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        return {
            "ref": ref,
            "legal_name": legal,
            "trading_name": name,
            "registration_number": f"{rng.randrange(10**7):08d}",
            "sub_industry": sub_industry,
            "timezone": LONDON,
            "description": f"{sub.name()} in {area.name}.",
            "website": f"https://{ref}.example",
            "founded_on": founded.isoformat(),
            "licence_number": f"{area.council}-{founded.year}-{rng.randrange(10_000):04d}",
            "licence_verified": True,
            "kyb": "passed",
            "reviews": {
                "score": f"{rng.uniform(4.3, 4.9):.2f}",
                "count": rng.randint(40, 3200),
                "source": "Google reviews",
            },
            "settlement_account": {
                "iban": str(
                    IBAN.generate(
                        "GB",
                        bank_code=rng.choice(_BANKS),
                        branch_code=f"{rng.randrange(10**6):06d}",
                        account_code=f"{rng.randrange(10**8):08d}",
                    ).compact
                ),
                "account_name": legal,
            },
            "locations": self._locations(name, area),
            "contacts": [
                {
                    "name": f"{first} {last}",
                    "role": "Owner",
                    "email": f"{first.lower()}@{ref}.example",
                    # Ofcom keeps 020 7946 0000–0999 free for drama: never a real line.
                    "phone": f"+44 20 7946 {rng.randrange(1000):04d}",
                    "is_primary": True,
                }
            ],
            "manager": f"{area.manager}@{EMAIL_DOMAIN}",
        }

    def _locations(self, name: str, area: Area) -> list[dict[str, Any]]:
        rng = self.rng
        count = 2 if rng.random() < 0.15 else 1
        locations = []
        for i in range(count):
            mid = f"4{self.merchant_count:06d}{i:02d}{rng.randrange(10**6):06d}"
            terminals = []
            for _ in range(rng.randint(1, 3)):
                self.terminal_count += 1
                terminals.append(
                    {"acquirer_merchant_id": mid, "terminal_id": f"T{self.terminal_count:07d}"}
                )
            postcode = f"{rng.choice(area.postcodes)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            locations.append(
                {
                    "name": name
                    if count == 1
                    else f"{name} ({'main' if i == 0 else 'second'} shop)",
                    "address_line": f"{rng.randint(1, 240)} {rng.choice(area.streets)}",
                    "city": "Richmond" if area.circle_code == "richmond" else "London",
                    "postcode": postcode,
                    "country": "GB",
                    **_near(rng, (area.latitude, area.longitude), 2400),
                    "terminals": terminals,
                }
            )
        return locations

    def _shop(self, shop: Shop, area: Area) -> dict[str, Any]:
        merchant = self._base(shop.name, shop.sub_industry, area)
        merchant["status"] = shop.status
        if shop.status_reason:
            merchant["status_reason"] = shop.status_reason
        merchant["circles"] = [area.circle_code, *shop.segments]
        return merchant

    def _prospect(self, prospect: Prospect) -> dict[str, Any]:
        merchant = self._base(prospect.name, prospect.sub_industry, self.areas[prospect.area])
        merchant["status"] = prospect.status
        merchant["kyb"] = prospect.kyb
        merchant["licence_verified"] = prospect.licence_verified
        if not prospect.reviews:
            del merchant["reviews"]
        if prospect.status_reason:
            merchant["status_reason"] = prospect.status_reason
        if prospect.apply:
            merchant["applications"] = [{"circle": prospect.area, "waitlist": prospect.waitlist}]
        return merchant

    # -- members -----------------------------------------------------------------------------

    def member(self, i: int) -> dict[str, Any]:
        rng = self.rng
        if i == 0:
            return self._demo_customer()
        area = rng.choice(AREAS)
        age = rng.choices(
            (rng.randint(18, 29), rng.randint(30, 44), rng.randint(45, 59), rng.randint(60, 88)),
            weights=(25, 35, 22, 18),
        )[0]
        attributes: dict[str, Any] = {"age": age, "car_owner": rng.random() < 0.45}
        if 25 <= age <= 55 and rng.random() < 0.5:
            attributes["children"] = rng.choice((1, 1, 2, 2, 3))
            attributes["youngest_child_age"] = rng.randint(0, min(17, age - 20))
        else:
            attributes["children"] = 0
        member: dict[str, Any] = {
            "bank_ref": f"THB{10000001 + i}",
            # Most live inside their branch's circle; some just outside it.
            "home": _near(rng, (area.latitude, area.longitude), 3500),
            "attributes": attributes,
            "cards": self._cards(2 if rng.random() < 0.35 else 1),
        }
        if age < 67 and rng.random() < 0.6:
            member["work"] = _near(rng, rng.choice(OFFICES), 1200)
        if rng.random() < 0.2:  # enrolled at a branch under the earlier terms
            member["consent"] = {
                "text_version": "alliance-terms-2025-07",
                "granted_at": _instant(
                    self.launch - timedelta(days=rng.randint(30, 400)), time(11)
                ),
                "channel": "branch",
            }
        return member

    def _demo_customer(self) -> dict[str, Any]:
        clapham = self.areas["clapham"]
        return {
            "bank_ref": DEMO_CUSTOMER_REF,
            "home": {"latitude": clapham.latitude + 0.004, "longitude": clapham.longitude - 0.006},
            "work": {"latitude": 51.5054, "longitude": -0.0235},  # Canary Wharf
            "attributes": {"age": 36, "children": 2, "youngest_child_age": 4, "car_owner": True},
            "cards": self._cards(2),
        }

    def _cards(self, count: int) -> list[dict[str, str]]:
        cards: list[dict[str, str]] = []
        while len(cards) < count:
            token = f"tok_{self.rng.getrandbits(80):020x}"
            if token in self.card_tokens:
                continue
            self.card_tokens.add(token)
            cards.append({"card_token": token, "last4": f"{self.rng.randrange(10_000):04d}"})
        return cards

    # -- benefits ----------------------------------------------------------------------------

    def benefits(self) -> list[dict[str, Any]]:
        benefits = []
        n = 0
        for shop, area in self.shops:
            if shop.status == "suspended":
                continue  # nothing new goes live while a complaint is looked into
            for second in (False, True):
                if second and n % 3:
                    continue
                benefit = self._benefit(n, shop, area)
                if shop.status == "exited":
                    benefit["status"] = "ended"
                    benefit["status_reason"] = "the merchant left the alliance"
                elif n % 9 == 4:
                    benefit["status"] = "submitted"  # waiting for the bank's approval
                elif n == 20:
                    benefit["status"] = "rejected"
                    benefit["status_reason"] = "The public website offers the same discount"
                elif n == 32:
                    benefit["status"] = "paused"
                    benefit["status_reason"] = "Kitchen refurbishment until next month"
                benefits.append(benefit)
                n += 1
        return benefits

    def _benefit(self, n: int, shop: Shop, area: Area) -> dict[str, Any]:
        rng = self.rng
        kind = KINDS[n % len(KINDS)]
        sub = taxonomy().sub_industry(shop.sub_industry)
        assert sub is not None
        words = DOMAIN_WORDS[sub.domain.value]
        benefit: dict[str, Any] = {
            "ref": f"{slug(shop.name)}-{n}",
            "merchant": slug(shop.name),
            "kind": kind,
            "channels": _channels(kind, CHANNEL_SETS[(n // len(KINDS)) % len(CHANNEL_SETS)]),
            "valid_from": self.launch.isoformat(),
            "valid_to": (self.today + timedelta(days=rng.choice((90, 180, 270, 365)))).isoformat(),
            "merchant_share_bps": rng.choice((10_000, 10_000, 8_000, 5_000)),
            "commission_bps": rng.choice((0, 100, 150, 250)),
        }
        benefit.update(_TERMS[kind](rng, words))
        if shop.segments and n % 2 == 0:
            benefit["target_circles"] = [shop.segments[0]]
        elif n % 4 == 1:
            benefit["target_circles"] = [area.circle_code]
        if sub.domain.value == "dining" and kind == "percent_off":
            benefit.update(weekdays=[1, 2, 3, 4, 5], hour_start=11, hour_end=15)
            benefit["title"] += " at weekday lunchtimes"
        return benefit


def _channels(kind: str, drawn: list[str]) -> list[str]:
    """The channels drawn, card-linked too where that makes sense: a cash or points benefit a
    member can claim at the counter is earned just as well by paying with a linked card (the
    engine rewards only those kinds; online-only offers stay online)."""
    if kind in CARD_KINDS and "voucher" in drawn and "card_linked" not in drawn:
        return ["card_linked", *drawn]
    return drawn


def _pounds(minor: int) -> str:
    return f"£{minor // 100}" if minor % 100 == 0 else f"£{minor / 100:.2f}"


def _percent_off(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    percent = rng.choice((10, 12, 15, 20))
    return {
        "title": f"{percent}% off {words['on']}",
        "percent_bps": percent * 100,
        "max_reward_minor": rng.choice((1000, 1500, 2500)),
        "member_limit": 4,
        "limit_period": "month",
        "budget_minor": rng.choice((250_000, 500_000, 1_000_000)),
        "regular_price_minor": rng.choice((2000, 3500, 5000)),
        "public_discount_bps": rng.choice((0, 500)),
    }


def _amount_off(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    fixed = rng.choice((300, 500, 1000))
    return {
        "title": f"{_pounds(fixed)} off {words['on']} over {_pounds(fixed * 5)}",
        "fixed_minor": fixed,
        "min_spend_minor": fixed * 5,
        "member_limit": 2,
        "limit_period": "week",
        "budget_minor": rng.choice((200_000, 400_000)),
        "regular_price_minor": fixed * 5 + 500,
        "public_discount_bps": 0,
    }


def _spend_threshold(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    threshold = rng.choice((3000, 5000, 8000))
    return {
        "title": f"Spend {_pounds(threshold)}, save {_pounds(threshold // 5)}",
        "threshold_minor": threshold,
        "fixed_minor": threshold // 5,
        "member_limit": 1,
        "limit_period": "month",
        "budget_minor": 300_000,
        "regular_price_minor": threshold + 1000,
        "public_price_minor": threshold + 1000,
    }


def _points(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    multiplier = rng.choice((2, 3, 5))
    return {
        "title": f"{multiplier}× Thames & Harbour points on {words['on']}",
        "points_multiplier": multiplier,
        "publicly_available": False,
    }


def _gift(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    return {
        "title": "A members' welcome gift",
        "offer_details": words["gift"],
        "publicly_available": False,
        "member_limit": 1,
        "quantity": rng.choice((300, 500, 1000)),
    }


def _trial(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    return {
        "title": words["trial"],
        "offer_details": f"{words['trial']} for members new to us",
        "publicly_available": False,
        "new_to_merchant_days": 365,
        "member_limit": 1,
    }


def _event(rng: random.Random, words: dict[str, str]) -> dict[str, Any]:
    return {
        "title": words["event"],
        "offer_details": f"{words['event']}: Thursdays, 6 to 9 pm; bring a guest",
        "publicly_available": False,
        "weekdays": [4],
        "hour_start": 18,
        "hour_end": 21,
        "quantity": rng.choice((40, 60, 80)),
        "member_limit": 1,
        "limit_period": "month",
    }


_TERMS = {
    "percent_off": _percent_off,
    "amount_off": _amount_off,
    "spend_threshold": _spend_threshold,
    "points_multiplier": _points,
    "gift": _gift,
    "free_trial": _trial,
    "event": _event,
}
