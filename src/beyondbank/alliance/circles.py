"""Branches, business circles and their admission requirements: the bank's map of its alliance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import admission
from beyondbank.alliance.models import (
    DEFAULT_RADIUS_M,
    AdmissionRequirement,
    ApplicationCheck,
    Branch,
    Circle,
    CircleKind,
    CircleStatus,
    RequirementKind,
    Seat,
)
from beyondbank.alliance.schemas import BranchIn, CircleIn, CirclePatch, RequirementIn
from beyondbank.alliance.service import (
    circles_containing,
    get_branch,
    lock_rows,
    patch_values,
)
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, FieldError, InvalidInput, InvalidTransition
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

CIRCLE_TRANSITIONS: dict[CircleStatus, frozenset[CircleStatus]] = {
    CircleStatus.ACTIVE: frozenset({CircleStatus.ARCHIVED}),
    CircleStatus.ARCHIVED: frozenset(),
}
_GEOGRAPHIC_ONLY: tuple[str, ...] = ("center_latitude", "center_longitude", "radius_m")
_SEGMENT_ONLY: tuple[str, ...] = ("segment_name", "segment_rule")


# -- branches --------------------------------------------------------------------------------


def create_branch(uow: UnitOfWork, actor: Principal, data: BranchIn) -> Branch:
    now = uow.clock.now()
    branch = Branch(public_id=new_public_id("brn"), created_at=now, **data.model_dump())
    try:
        with uow.session.begin_nested():
            uow.session.add(branch)
    except IntegrityError:
        raise Conflict(
            _("A branch with the code %(code)r exists already.", code=data.code)
        ) from None
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="branch.created",
        object_type="branch",
        object_id=branch.public_id,
        after=audit.snapshot(branch),
    )
    uow.commit()
    return branch


def list_branches(
    uow: UnitOfWork, *, cursor: str | None, limit: int
) -> tuple[Sequence[Branch], str | None]:
    return paginate(uow.session, select(Branch), Branch.id, cursor=cursor, limit=limit)


# -- circles ---------------------------------------------------------------------------------


def _misplaced_fields(kind: CircleKind, values: dict[str, Any]) -> list[FieldError]:
    """Fields sent that the other kind of circle has: a segment circle has no centre, etc."""
    if kind == CircleKind.GEOGRAPHIC:
        foreign, message = _SEGMENT_ONLY, _("only segment circles have this")
    else:
        foreign, message = _GEOGRAPHIC_ONLY, _("only geographic circles have this")
    return [FieldError(f"body.{name}", message) for name in foreign if values.get(name) is not None]


def _centre(
    latitude: float | None, longitude: float | None, branch: Branch | None
) -> tuple[tuple[float, float] | None, list[FieldError]]:
    """The centre given, or else the anchor branch's; both coordinates or neither."""
    if latitude is not None and longitude is not None:
        return (latitude, longitude), []
    if latitude is not None or longitude is not None:
        missing = "center_longitude" if longitude is None else "center_latitude"
        return None, [FieldError(f"body.{missing}", _("give both coordinates of the centre"))]
    if branch is not None:
        return (branch.latitude, branch.longitude), []
    return None, [
        FieldError(f"body.{name}", _("required unless the circle is anchored on a branch"))
        for name in ("center_latitude", "center_longitude")
    ]


def create_circle(uow: UnitOfWork, actor: Principal, data: CircleIn) -> Circle:
    values = data.model_dump()
    errors = _misplaced_fields(data.kind, values)
    branch = get_branch(uow, data.branch_id, field="body.branch_id") if data.branch_id else None
    centre: tuple[float, float] | None = None
    if data.kind == CircleKind.GEOGRAPHIC:
        centre, centre_errors = _centre(data.center_latitude, data.center_longitude, branch)
        errors += centre_errors
    else:
        errors += [
            FieldError(f"body.{name}", _("required for a segment circle"))
            for name in _SEGMENT_ONLY
            if values[name] is None
        ]
    if errors:
        raise InvalidInput(_("The circle's fields do not fit its kind."), errors=tuple(errors))
    now = uow.clock.now()
    geographic = data.kind == CircleKind.GEOGRAPHIC
    circle = Circle(
        public_id=new_public_id("cir"),
        code=data.code,
        name=data.name,
        description=data.description,
        kind=data.kind,
        status=CircleStatus.ACTIVE,
        branch_id=branch.id if branch else None,
        center_latitude=centre[0] if centre else None,
        center_longitude=centre[1] if centre else None,
        radius_m=(data.radius_m or DEFAULT_RADIUS_M) if geographic else None,
        segment_name=data.segment_name,
        segment_rule=data.segment_rule,
        created_at=now,
        updated_at=now,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(circle)
    except IntegrityError:
        raise Conflict(
            _("A circle with the code %(code)r exists already.", code=data.code)
        ) from None
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="circle.created",
        object_type="circle",
        object_id=circle.public_id,
        after=audit.snapshot(circle),
    )
    uow.commit()
    return circle


@dataclass(frozen=True, slots=True)
class CircleFilter:
    kind: CircleKind | None = None
    status: CircleStatus | None = None
    branch_id: int | None = None
    contains: tuple[float, float] | None = None  # active geographic circles around this point


def list_circles(
    uow: UnitOfWork, filters: CircleFilter, *, cursor: str | None, limit: int
) -> tuple[Sequence[Circle], str | None]:
    stmt = select(Circle)
    for column, value in (
        (Circle.kind, filters.kind),
        (Circle.status, filters.status),
        (Circle.branch_id, filters.branch_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if filters.contains is not None:
        inside = circles_containing(uow, *filters.contains)
        stmt = stmt.where(Circle.id.in_([c.id for c in inside]))
    return paginate(uow.session, stmt, Circle.id, cursor=cursor, limit=limit)


def _ensure_active(circle: Circle) -> None:
    if circle.status != CircleStatus.ACTIVE:
        raise InvalidTransition(
            _(
                "Circle %(circle)s is %(status)s: it can no longer change.",
                circle=circle.public_id,
                status=circle.status.value,
            ),
            extra={"current_status": circle.status.value},
        )


def _check_transition(circle: Circle, to: CircleStatus) -> None:
    if to not in CIRCLE_TRANSITIONS[circle.status]:
        raise InvalidTransition(
            _(
                "Circle %(circle)s is %(status)s: it cannot become %(to)s.",
                circle=circle.public_id,
                status=circle.status.value,
                to=to.value,
            ),
            extra={"current_status": circle.status.value},
        )


def update_circle(uow: UnitOfWork, actor: Principal, circle: Circle, patch: CirclePatch) -> Circle:
    """Change a circle's name, area, anchor or rule; re-anchoring moves the centre to the new
    branch unless a centre is given too. A circle's kind never changes."""
    _ensure_active(circle)
    values = patch_values(patch, nullable=("description", "branch_id"))
    errors = _misplaced_fields(circle.kind, values)
    if errors:
        raise InvalidInput(_("The circle's fields do not fit its kind."), errors=tuple(errors))
    before = audit.snapshot(circle)
    if "branch_id" in values:
        anchor = values.pop("branch_id")
        branch = get_branch(uow, anchor, field="body.branch_id") if anchor else None
        circle.branch_id = branch.id if branch else None
        if circle.kind == CircleKind.GEOGRAPHIC and branch is not None:
            values.setdefault("center_latitude", branch.latitude)
            values.setdefault("center_longitude", branch.longitude)
    if ("center_latitude" in values) != ("center_longitude" in values):
        missing = "center_longitude" if "center_latitude" in values else "center_latitude"
        raise InvalidInput(
            _("Move the centre with both coordinates."),
            errors=(FieldError(f"body.{missing}", _("give both coordinates of the centre")),),
        )
    for name, value in values.items():
        setattr(circle, name, value)
    _record_change(uow, actor, circle, before, "circle.updated")
    uow.commit()
    return circle


def archive_circle(uow: UnitOfWork, actor: Principal, circle: Circle, reason: str) -> Circle:
    """Retire a circle: its seats are released and its open applications withdrawn (history kept)."""
    lock_rows(uow, Circle.id, [circle.id])
    uow.session.refresh(circle)
    _check_transition(circle, CircleStatus.ARCHIVED)
    admission.close_circle(uow, actor, circle, f"circle archived: {reason}")
    before = audit.snapshot(circle)
    circle.status = CircleStatus.ARCHIVED
    _record_change(uow, actor, circle, before, "circle.archived", reason=reason)
    uow.commit()
    return circle


def _record_change(
    uow: UnitOfWork,
    actor: Principal,
    circle: Circle,
    before: dict[str, Any],
    action: str,
    reason: str | None = None,
) -> None:
    now = uow.clock.now()
    if audit.record_changes(
        uow.session,
        actor=actor,
        at=now,
        action=action,
        object_type="circle",
        object_id=circle.public_id,
        before=before,
        after=audit.snapshot(circle),
        reason=reason,
    ):
        circle.updated_at = now


# -- admission requirements ------------------------------------------------------------------


def _requirement_errors(circle: Circle, requirements: Sequence[RequirementIn]) -> list[FieldError]:
    errors = []
    seen: dict[tuple[RequirementKind, str], int] = {}
    for i, requirement in enumerate(requirements):
        key = (requirement.kind, requirement.label)
        if key in seen:
            errors.append(
                FieldError(
                    f"body.requirements.{i}.label",
                    _(
                        "repeats requirement %(number)s; give each of one kind its own label",
                        number=seen[key],
                    ),
                )
            )
        seen.setdefault(key, i)
        if (
            requirement.kind == RequirementKind.LOCATION_IN_CIRCLE
            and circle.kind != CircleKind.GEOGRAPHIC
        ):
            errors.append(
                FieldError(
                    f"body.requirements.{i}.kind", _("a segment circle has no area to be inside")
                )
            )
    return errors


def replace_requirements(
    uow: UnitOfWork, actor: Principal, circle: Circle, requirements: Sequence[RequirementIn]
) -> Circle:
    """Set the circle's admission requirements to exactly these. Past applications' check results
    keep their kind and label when the requirement behind them goes."""
    _ensure_active(circle)
    errors = _requirement_errors(circle, requirements)
    if errors:
        raise InvalidInput(_("Some requirements are not valid."), errors=tuple(errors))
    before = [_requirement_summary(r) for r in circle.requirements]
    existing = {(r.kind, r.label): r for r in circle.requirements}
    for requirement in requirements:
        row = existing.pop((requirement.kind, requirement.label), None)
        if row is None:
            row = AdmissionRequirement(
                circle_id=circle.id, kind=requirement.kind, label=requirement.label
            )
            uow.session.add(row)
        row.params = requirement.params
    dropped = [r.id for r in existing.values()]
    if dropped:
        uow.session.execute(
            update(ApplicationCheck)
            .where(ApplicationCheck.requirement_id.in_(dropped))
            .values(requirement_id=None)
        )
        for row in existing.values():
            uow.session.delete(row)
    uow.session.flush()
    uow.session.expire(circle, ["requirements"])
    now = uow.clock.now()
    circle.updated_at = now
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="circle.requirements_replaced",
        object_type="circle",
        object_id=circle.public_id,
        before={"requirements": before},
        after={"requirements": [_requirement_summary(r) for r in circle.requirements]},
    )
    uow.commit()
    return circle


def _requirement_summary(requirement: AdmissionRequirement) -> dict[str, Any]:
    return {
        "kind": requirement.kind.value,
        "label": requirement.label,
        "params": requirement.params,
    }


# -- seats and coverage ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainCoverage:
    """Which of a life domain's sub-industries have a merchant in the circle, and which are free."""

    domain: LifeDomain
    names: dict[str, str]
    held: list[str]
    free: list[str]


def coverage(seats: Iterable[Seat]) -> list[DomainCoverage]:
    held = {seat.sub_industry for seat in seats}
    return [
        DomainCoverage(
            domain=domain.code,
            names=domain.names,
            held=[s.code for s in domain.sub_industries if s.code in held],
            free=[s.code for s in domain.sub_industries if s.code not in held],
        )
        for domain in taxonomy().domains
    ]
