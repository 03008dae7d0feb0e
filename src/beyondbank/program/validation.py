"""Checking a program document as a whole before anything is written.

Three passes, and every problem of every pass is reported, each with its path and line:

1. each entry against its area's input schema (the API's own rules for each field);
2. references by the file's codes (to the file or the database), and codes, refs, terminals
   and card tokens given twice in the file or held already by the database;
3. the programme's rules: one merchant per circle and sub-industry, a merchant's status fits
   its seats and applications, a seat's admission requirements are met (with the admission
   checks themselves), and each benefit passes price integrity and can take its status.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from beyondbank.alliance import checks
from beyondbank.alliance.models import (
    DEFAULT_RADIUS_M,
    AdmissionRequirement,
    Circle,
    CircleKind,
    CircleStatus,
    KybStatus,
    Merchant,
    MerchantLocation,
    MerchantStatus,
    RequirementKind,
)
from beyondbank.alliance.schemas import BankConsentIn
from beyondbank.benefits import rules
from beyondbank.benefits.integrity import check_price_integrity
from beyondbank.benefits.models import BenefitStatus
from beyondbank.benefits.service import declaration_of, reward_of
from beyondbank.core.uow import UnitOfWork
from beyondbank.program.existing import Existing, read_existing
from beyondbank.program.schemas import (
    SECTIONS,
    BenefitEntry,
    BranchEntry,
    CircleEntry,
    MemberEntry,
    MerchantEntry,
    ProgramHeader,
)
from beyondbank.program.source import DataPath, Document, Issue, PathPart, dotted

M = TypeVar("M", bound=BaseModel)
S = MerchantStatus

# Which merchant statuses may hold seats and open applications once imported (an exited
# merchant held its seats until it left: its seats are taken, then given up, and each slot is
# offered to the slot's waitlist, as when a merchant exits today).
SEAT_STATUSES = frozenset({S.ADMITTED, S.ACTIVE, S.SUSPENDED, S.EXITED})
APPLICATION_STATUSES = frozenset({S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE, S.SUSPENDED, S.REJECTED})
WAITLIST_STATUSES = frozenset({S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE, S.SUSPENDED})
LIVE_BENEFIT_STATUSES = frozenset({BenefitStatus.ACTIVE, BenefitStatus.PAUSED})
# Requirements the import does not predict: the database decides the slot, and a manual check
# is confirmed by the import for seats it migrates.
_NOT_PREDICTED = frozenset({RequirementKind.SLOT_FREE, RequirementKind.MANUAL_CHECK})


@dataclass(frozen=True, slots=True)
class Entry(Generic[M]):
    path: DataPath  # ("merchants", 3)
    model: M


@dataclass(slots=True)
class Plan:
    """A document that passed every check: its entries, and the database objects it refers to."""

    document: Document
    header: ProgramHeader
    existing: Existing
    branches: list[Entry[BranchEntry]] = field(default_factory=list)
    circles: list[Entry[CircleEntry]] = field(default_factory=list)
    merchants: list[Entry[MerchantEntry]] = field(default_factory=list)
    members: list[Entry[MemberEntry]] = field(default_factory=list)
    benefits: list[Entry[BenefitEntry]] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)  # reported; they stop nothing


class ImportRejected(Exception):
    """The document (or a write it led to) was refused; nothing was written. `issues` says why."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the program file")
        self.issues = list(issues)


_STAND_IN_CONSENT = BankConsentIn(text_version="-", granted_at=datetime(2000, 1, 1, tzinfo=UTC))


def validate(uow: UnitOfWork, document: Document, *, default_currency: str, now: datetime) -> Plan:
    """The document's plan if it is valid as a whole; otherwise `ImportRejected` with every issue."""
    data = document.data
    if not isinstance(data, dict):
        sections = ", ".join(SECTIONS)
        raise ImportRejected(
            [document.issue((), f"the file must be a mapping with the sections {sections}")]
        )
    issues: list[Issue] = []
    header_raw = {k: v for k, v in data.items() if k not in SECTIONS}
    header = _parse(document, ProgramHeader, header_raw, (), issues) or ProgramHeader()
    raw = {name: _section(document, data, name, issues) for name in SECTIONS}
    if "consent" in header_raw:
        # A bad document consent is reported once, above; members then borrow a stand-in
        # rather than each repeating that problem.
        consent = (header.consent or _STAND_IN_CONSENT).model_dump(mode="json")
        raw["members"] = [
            {"consent": consent, **item} if isinstance(item, dict) else item
            for item in raw["members"]
        ]
    merchants = _entries(document, MerchantEntry, "merchants", raw, issues)
    members = _entries(document, MemberEntry, "members", raw, issues)
    existing = read_existing(
        uow,
        acquirer_merchant_ids={
            t.acquirer_merchant_id
            for m in merchants
            for location in m.model.locations
            for t in location.terminals
        },
        card_tokens={card.card_token for m in members for card in m.model.cards},
        bank_refs={m.model.bank_ref for m in members},
    )
    plan = Plan(document=document, header=header, existing=existing)
    plan.branches = _entries(document, BranchEntry, "branches", raw, issues)
    plan.circles = _entries(document, CircleEntry, "circles", raw, issues)
    plan.merchants = merchants
    plan.members = members
    plan.benefits = _entries(document, BenefitEntry, "benefits", raw, issues)
    _Checks(uow, plan, raw, default_currency, now, issues).run()
    if issues:
        order = {id(issue): i for i, issue in enumerate(issues)}
        issues.sort(key=lambda i: (i.line is None, i.line or 0, order[id(i)]))
        raise ImportRejected(issues)
    return plan


# -- pass 1: each entry against its schema -----------------------------------------------------


def _section(document: Document, data: dict[str, Any], name: str, issues: list[Issue]) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        issues.append(document.issue((name,), f"`{name}` is a list of entries"))
        return []
    return value


def _entries(
    document: Document,
    model: type[M],
    section: str,
    raw: dict[str, list[Any]],
    issues: list[Issue],
) -> list[Entry[M]]:
    entries = []
    for i, item in enumerate(raw[section]):
        parsed = _parse(document, model, item, (section, i), issues)
        if parsed is not None:
            entries.append(Entry((section, i), parsed))
    return entries


def _parse(
    document: Document,
    model: type[M],
    value: Any,
    prefix: DataPath,
    issues: list[Issue],
) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            issues.append(document.issue((*prefix, *error["loc"]), _message(error)))
        return None


def _message(error: Any) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return "not a field here (misspelt?)"
    if kind == "missing":
        return "required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and isinstance(value, bool | int | float):
        # YAML reads 12345678 as a number and `no` as false: codes made of digits need quotes.
        message += f" (YAML read {value!r}: put the value in quotes)"
    return message


# -- passes 2 and 3 --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Seat:
    merchant: str  # ref
    path: DataPath


class _Checks:
    def __init__(
        self,
        uow: UnitOfWork,
        plan: Plan,
        raw: dict[str, list[Any]],
        default_currency: str,
        now: datetime,
        issues: list[Issue],
    ) -> None:
        self.uow = uow
        self.plan = plan
        self.document = plan.document
        self.existing = plan.existing
        self.default_currency = default_currency
        self.now = now
        self.issues = issues
        # Codes declared by entries that failed their schema: references to them are not
        # reported again (the entry's own problems are).
        self.raw = raw
        self.declared = {name: _raw_values(raw[name], _KEYS[name]) for name in SECTIONS}
        self.declared_seats = _declared_seats(raw["merchants"])
        self.branches = {e.model.code: e for e in plan.branches}
        self.circles = {e.model.code: e for e in plan.circles}
        self.merchants = {e.model.ref: e for e in plan.merchants}
        self.seats: dict[tuple[str, str], _Seat] = {}

    def issue(self, path: Sequence[PathPart], message: str) -> None:
        self.issues.append(self.document.issue(path, message))

    def where(self, path: DataPath) -> str:
        line = self.document.line_of(path)
        return f"{dotted(path)}, line {line}" if line else dotted(path)

    def run(self) -> None:
        self._duplicates()
        for branch in self.plan.branches:
            self._branch(branch)
        for circle in self.plan.circles:
            self._circle(circle)
        for merchant in self.plan.merchants:
            self._merchant(merchant)
        for merchant in self.plan.merchants:  # once every seat is known
            self._applications(merchant)
        for member in self.plan.members:
            self._member(member)
        for benefit in self.plan.benefits:
            self._benefit(benefit)

    # -- codes given twice ---------------------------------------------------------------------

    def _duplicates(self) -> None:
        """Read from the raw entries, so that a repeat is found even when one of the two entries
        has other problems too."""
        for section, key in _KEYS.items():
            self._once(
                (
                    ((section, i, key), text)
                    for i, item in _items(self.raw[section])
                    if (text := _text(item.get(key))) is not None
                ),
                _WHAT[section],
            )
        self._once(
            (
                (("members", i, "cards", j, "card_token"), token)
                for i, member in _items(self.raw["members"])
                for j, card in _items(member.get("cards"))
                if (token := _text(card.get("card_token"))) is not None
            ),
            "card token",
        )
        self._once(
            (
                (
                    ("merchants", i, "locations", k, "terminals", j),
                    (mid, _text(t.get("terminal_id"))),
                )
                for i, merchant in _items(self.raw["merchants"])
                for k, location in _items(merchant.get("locations"))
                for j, t in _items(location.get("terminals"))
                if (mid := _text(t.get("acquirer_merchant_id"))) is not None
            ),
            "terminal",
        )

    def _once(self, items: Iterable[tuple[DataPath, Hashable]], what: str) -> None:
        first: dict[Hashable, DataPath] = {}
        for path, key in items:
            if key in first:
                self.issue(path, f"the same {what} as {self.where(first[key])}")
            else:
                first[key] = path

    # -- branches and circles ---------------------------------------------------------------------

    def _branch(self, entry: Entry[BranchEntry]) -> None:
        if entry.model.code in self.existing.branches:
            self.issue((*entry.path, "code"), "a branch with this code exists already")

    def _circle(self, entry: Entry[CircleEntry]) -> None:
        circle, path = entry.model, entry.path
        if circle.code in self.existing.circles:
            self.issue((*path, "code"), "a circle with this code exists already")
        anchored = circle.branch is not None
        if circle.branch is not None and not self._branch_known(circle.branch):
            self.issue(
                (*path, "branch"), f"no branch {circle.branch!r} in this file or the database"
            )
        if circle.kind == CircleKind.GEOGRAPHIC:
            self._misplaced(path, circle, ("segment_name", "segment_rule"), "segment")
            has_lat, has_lon = (
                circle.center_latitude is not None,
                circle.center_longitude is not None,
            )
            if has_lat != has_lon:
                missing = "center_longitude" if has_lat else "center_latitude"
                self.issue((*path, missing), "give both coordinates of the centre")
            elif not has_lat and not anchored:
                self.issue(
                    (*path, "center_latitude"),
                    "give the centre (center_latitude, center_longitude) or anchor the circle on "
                    "a branch (`branch`)",
                )
        else:
            self._misplaced(
                path, circle, ("center_latitude", "center_longitude", "radius_m"), "geographic"
            )
            for name in ("segment_name", "segment_rule"):
                if getattr(circle, name) is None:
                    self.issue((*path, name), "required for a segment circle")
        seen: dict[tuple[RequirementKind, str], int] = {}
        for i, requirement in enumerate(circle.requirements):
            here = (*path, "requirements", i)
            key = (requirement.kind, requirement.label)
            if key in seen:
                self.issue(
                    (*here, "label"),
                    f"repeats requirement {seen[key]}; give each of one kind its own label",
                )
            seen.setdefault(key, i)
            if (
                requirement.kind == RequirementKind.LOCATION_IN_CIRCLE
                and circle.kind != CircleKind.GEOGRAPHIC
            ):
                self.issue((*here, "kind"), "a segment circle has no area to be inside")

    def _misplaced(
        self, path: DataPath, circle: CircleEntry, names: Sequence[str], kind: str
    ) -> None:
        for name in names:
            if getattr(circle, name) is not None:
                self.issue((*path, name), f"only {kind} circles have this")

    def _branch_known(self, code: str) -> bool:
        return (
            code in self.branches
            or code in self.declared["branches"]
            or code in self.existing.branches
        )

    def _circle_known(self, path: DataPath, code: str) -> bool:
        """Is the code a circle of the file or an active one of the database? Reports if not."""
        if code in self.circles or code in self.declared["circles"]:
            return True
        circle = self.existing.circles.get(code)
        if circle is None:
            self.issue(path, f"no circle {code!r} in this file or the database")
            return False
        if circle.status != CircleStatus.ACTIVE:
            self.issue(path, f"circle {code!r} is {circle.status.value}: it admits nobody")
            return False
        return True

    # -- merchants ---------------------------------------------------------------------------------

    def _merchant(self, entry: Entry[MerchantEntry]) -> None:
        merchant, path = entry.model, entry.path
        for i, location in enumerate(merchant.locations):
            for j, t in enumerate(location.terminals):
                holder = self.existing.terminals.get((t.acquirer_merchant_id, t.terminal_id))
                if holder is not None:
                    self.issue(
                        (*path, "locations", i, "terminals", j),
                        f"registered to {holder} already",
                    )
        if merchant.founded_on is not None and merchant.founded_on > self.now.date():
            self.issue((*path, "founded_on"), "cannot be in the future")
        if merchant.licence_verified and not merchant.licence_number:
            self.issue((*path, "licence_verified"), "there is no licence_number to verify")
        if merchant.manager is not None and merchant.manager.lower() not in self.existing.managers:
            # The people of the old programme may not have accounts yet: the merchant is
            # imported without a manager, and the bank assigns one later.
            self.plan.warnings.append(
                self.document.issue(
                    (*path, "manager"),
                    "no active relationship manager with this email: imported without a manager",
                )
            )
        if merchant.circles and merchant.status not in SEAT_STATUSES:
            self.issue(
                (*path, "circles"),
                f"a merchant that is {merchant.status.value} holds no seats: seats belong to "
                "admitted, active, suspended or exited merchants",
            )
        seen: set[str] = set()
        for j, code in enumerate(merchant.circles):
            here = (*path, "circles", j)
            if code in seen:
                self.issue(here, f"circle {code!r} is listed twice")
                continue
            seen.add(code)
            if self._circle_known(here, code):
                self._take_seat(entry, here, code)

    def _take_seat(self, entry: Entry[MerchantEntry], path: DataPath, code: str) -> None:
        merchant = entry.model
        slot = (code, merchant.sub_industry)
        other = self.seats.get(slot)
        if other is not None:
            self.issue(
                path,
                f"one merchant per sub-industry per circle: the {merchant.sub_industry} seat in "
                f"{code!r} is taken by {other.merchant!r} ({self.where(other.path)})",
            )
            return
        held_by = self.existing.seats.get(slot)
        if held_by is not None:
            self.issue(
                path,
                f"one merchant per sub-industry per circle: {held_by} holds the "
                f"{merchant.sub_industry} seat in {code!r} already",
            )
            return
        self.seats[slot] = _Seat(merchant.ref, path)
        self._requirements_met(entry, path, code)

    def _applications(self, entry: Entry[MerchantEntry]) -> None:
        merchant, path = entry.model, entry.path
        if merchant.applications and merchant.status not in APPLICATION_STATUSES:
            hint = (
                "an applied merchant has not applied yet: make it under_review"
                if merchant.status == S.APPLIED
                else f"an {merchant.status.value} merchant has no open applications"
            )
            self.issue((*path, "applications"), hint)
            return
        seen = set(merchant.circles)
        for j, application in enumerate(merchant.applications):
            here = (*path, "applications", j)
            code = application.circle
            if code in seen:
                self.issue((*here, "circle"), f"{code!r} is listed twice (seats and applications)")
                continue
            seen.add(code)
            if not self._circle_known((*here, "circle"), code):
                continue
            if application.waitlist:
                self._waitlist(entry, here, code)

    def _waitlist(self, entry: Entry[MerchantEntry], path: DataPath, code: str) -> None:
        merchant = entry.model
        if merchant.status not in WAITLIST_STATUSES:
            self.issue((*path, "waitlist"), f"a {merchant.status.value} merchant waits for no slot")
            return
        slot = (code, merchant.sub_industry)
        held = slot in self.seats or slot in self.existing.seats
        if not held and slot not in self.declared_seats:
            self.issue(
                (*path, "waitlist"),
                f"the {merchant.sub_industry} seat in {code!r} is free: list {code!r} under "
                "`circles` to take it",
            )
            return
        self._requirements_met(entry, (*path, "circle"), code)

    def _requirements_met(self, entry: Entry[MerchantEntry], path: DataPath, code: str) -> None:
        """Run the circle's admission checks on the merchant as the file describes it, so that an
        approval the import makes cannot fail half-way through."""
        circle, requirements = self._circle_for_checks(code)
        if circle is None or (
            circle.kind == CircleKind.GEOGRAPHIC and circle.center_latitude is None
        ):
            return  # the circle's own problems are reported; its checks would only echo them
        merchant = _would_be_merchant(entry.model, self.now)
        ctx = checks.CheckContext(
            uow=self.uow,
            merchant=merchant,
            circle=circle,
            sub_industry=entry.model.sub_industry,
            today=self.now.date(),
        )
        for kind, label, params in requirements:
            if kind in _NOT_PREDICTED:
                continue
            outcome = checks.CHECKS[kind](ctx, params)
            if outcome.passed is not True:
                name = label or kind.value
                self.issue(path, f"{code!r} requires {name}: {outcome.reason}")

    def _circle_for_checks(
        self, code: str
    ) -> tuple[Circle | None, list[tuple[RequirementKind, str, dict[str, Any]]]]:
        entry = self.circles.get(code)
        if entry is not None:
            return _would_be_circle(entry.model, self._branch_point), [
                (r.kind, r.label, r.params) for r in entry.model.requirements
            ]
        circle = self.existing.circles.get(code)
        if circle is None:  # declared by an entry that failed its schema
            return None, []
        rows: list[AdmissionRequirement] = list(circle.requirements)
        return circle, [(r.kind, r.label, r.params) for r in rows]

    def _branch_point(self, code: str) -> tuple[float, float] | None:
        entry = self.branches.get(code)
        if entry is not None:
            return entry.model.latitude, entry.model.longitude
        branch = self.existing.branches.get(code)
        return (branch.latitude, branch.longitude) if branch else None

    # -- members -----------------------------------------------------------------------------------

    def _member(self, entry: Entry[MemberEntry]) -> None:
        member, path = entry.model, entry.path
        if member.bank_ref in self.existing.member_refs:
            self.issue((*path, "bank_ref"), "this customer is a member already")
        for j, card in enumerate(member.cards):
            if card.card_token in self.existing.card_tokens:
                self.issue((*path, "cards", j, "card_token"), "linked to a membership already")

    # -- benefits ----------------------------------------------------------------------------------

    def _benefit(self, entry: Entry[BenefitEntry]) -> None:
        benefit, path = entry.model, entry.path
        merchant = self.merchants.get(benefit.merchant)
        if merchant is None and benefit.merchant not in self.declared["merchants"]:
            self.issue((*path, "merchant"), f"no merchant {benefit.merchant!r} in this file")
        seen: set[str] = set()
        for j, code in enumerate(benefit.target_circles):
            here = (*path, "target_circles", j)
            if code in seen:
                self.issue(here, f"circle {code!r} is listed twice")
            seen.add(code)
            self._circle_known(here, code)
        currency = benefit.currency or self.default_currency
        verdict = check_price_integrity(
            reward_of(benefit), currency, benefit.min_spend_minor, declaration_of(benefit)
        )
        if not verdict.accepted:
            where = verdict.fields[0] if verdict.fields else "kind"
            self.issue((*path, where), f"price integrity: {verdict.reason}")
        if merchant is None:
            return
        timezone = benefit.timezone or merchant.model.timezone
        today = rules.local_time(self.now, timezone).date()
        if benefit.valid_to < today and benefit.status != BenefitStatus.ENDED:
            self.issue((*path, "valid_to"), f"is in the past ({today} in {timezone})")
        if benefit.status in LIVE_BENEFIT_STATUSES and merchant.model.status != S.ACTIVE:
            self.issue(
                (*path, "status"),
                f"an {benefit.status.value} benefit needs an active merchant; "
                f"{benefit.merchant!r} is {merchant.model.status.value}",
            )


_WHAT = {
    "branches": "branch code",
    "circles": "circle code",
    "merchants": "merchant ref",
    "members": "bank_ref",
    "benefits": "benefit ref",
}
_KEYS = {
    "branches": "code",
    "circles": "code",
    "merchants": "ref",
    "members": "bank_ref",
    "benefits": "ref",
}


def _raw_values(items: Sequence[Any], key: str) -> set[str]:
    return {text for _, item in _items(items) if (text := _text(item.get(key))) is not None}


def _items(value: Any) -> list[tuple[int, dict[str, Any]]]:
    """The mappings of a raw list, with their index; anything else is the schema's to report."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _text(value: Any) -> str | None:
    """A raw code as the schema will read it (stripped), or None if it is no code at all."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _declared_seats(items: Sequence[Any]) -> set[tuple[str, str]]:
    """(circle, sub-industry) slots the raw merchants claim, valid or not."""
    seats: set[tuple[str, str]] = set()
    for _, merchant in _items(items):
        sub = _text(merchant.get("sub_industry"))
        circles = merchant.get("circles")
        if sub is None or not isinstance(circles, list):
            continue
        seats.update((code, sub) for c in circles if (code := _text(c)) is not None)
    return seats


def _would_be_circle(
    entry: CircleEntry, branch_point: Callable[[str], tuple[float, float] | None]
) -> Circle:
    """The circle the import would create, unsaved, for the admission checks to look at."""
    centre: tuple[float | None, float | None] = (entry.center_latitude, entry.center_longitude)
    if centre[0] is None and entry.branch is not None:
        point = branch_point(entry.branch)
        centre = point if point is not None else (None, None)
    geographic = entry.kind == CircleKind.GEOGRAPHIC
    return Circle(
        code=entry.code,
        name=entry.name,
        kind=entry.kind,
        status=CircleStatus.ACTIVE,
        center_latitude=centre[0],
        center_longitude=centre[1],
        radius_m=(entry.radius_m or DEFAULT_RADIUS_M) if geographic else None,
    )


def _would_be_merchant(entry: MerchantEntry, now: datetime) -> Merchant:
    """The merchant as it will be when the import applies for its seats: unsaved, never added
    to a session."""
    merchant = Merchant(
        trading_name=entry.trading_name,
        sub_industry=entry.sub_industry,
        review_score=entry.reviews.score if entry.reviews else None,
        review_count=entry.reviews.count if entry.reviews else 0,
        licence_number=entry.licence_number,
        licence_verified_at=now if entry.licence_verified and entry.licence_number else None,
        kyb_status=entry.kyb,
        kyb_checked_at=now if entry.kyb != KybStatus.PENDING else None,
        settlement_iban=entry.settlement_account.iban if entry.settlement_account else None,
        founded_on=entry.founded_on,
    )
    merchant.locations = [
        MerchantLocation(
            name=location.name,
            latitude=location.latitude,
            longitude=location.longitude,
            active=True,
        )
        for location in entry.locations
    ]
    return merchant
