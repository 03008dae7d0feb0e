"""RFC 9457 problem details: the one error shape of the API, raised from services as exceptions.

Each problem has a stable `type` (a relative URI under `/problems/`, documented in
docs/problems.md), a short `title`, a human `detail` and, for bad input, field-level `errors`.
The caller reads them in their language: the detail is translated where it is raised, the title
(marked with N_()) when the problem is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from beyondbank.core.i18n import N_, _

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # dotted path into the request, e.g. "body.locations.0.latitude"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class Problem(Exception):
    """A failure the caller can act on. Subclasses fix the status and type."""

    detail: str
    errors: Sequence[FieldError] = field(default_factory=tuple)
    extra: dict[str, Any] = field(default_factory=dict)

    status = 400
    slug = "bad-request"
    title = N_("Bad request")

    def __str__(self) -> str:
        return self.detail

    def as_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": _(self.title),
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        body.update(self.extra)
        return body


class InvalidInput(Problem):
    status = 422
    slug = "invalid-input"
    title = N_("The request has invalid fields")


class Unauthenticated(Problem):
    status = 401
    slug = "unauthenticated"
    title = N_("Authentication required")


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = N_("Not allowed")


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = N_("Not found")


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = N_("Conflict with the current state")


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = N_("Not allowed in the current state")


class SlotTaken(Conflict):
    slug = "slot-taken"
    title = N_("The circle's sub-industry slot is taken")


class LimitReached(Conflict):
    slug = "limit-reached"
    title = N_("A limit or budget is exhausted")


class InsufficientBalance(Conflict):
    """A constrained account (a prepaid budget, a co-funding pool, a deposit) would go below its floor."""

    slug = "insufficient-balance"
    title = N_("Not enough balance")


class NotEligible(Problem):
    status = 422
    slug = "not-eligible"
    title = N_("Not eligible")


class IdempotencyKeyReused(Problem):
    status = 422
    slug = "idempotency-key-reused"
    title = N_("Idempotency-Key reused with a different request")


class IdempotencyInFlight(Conflict):
    slug = "idempotency-in-flight"
    title = N_("A request with this Idempotency-Key is still being processed")


def invalid(field_path: str, message: str, detail: str | None = None) -> InvalidInput:
    """Shorthand for a single bad field."""
    return InvalidInput(
        detail or f"{field_path}: {message}", errors=(FieldError(field_path, message),)
    )


def not_found(kind: str, public_id: str) -> NotFound:
    """`kind` is a word marked with N_() where it is named; it is translated here."""
    return NotFound(_("No %(kind)s %(public_id)r here.", kind=_(kind), public_id=public_id))
