"""Audit visits as the console and the merchant portal show them: each visit with its merchant,
location, findings and corrective action, and the findings at each visit as chart bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from beyondbank.alliance import audits
from beyondbank.alliance.audits import Finding
from beyondbank.alliance.models import AuditVisit, CorrectiveAction
from beyondbank.core.uow import UnitOfWork
from beyondbank.web import lookups
from beyondbank.web.templating import day, words


@dataclass(frozen=True, slots=True)
class VisitRow:
    visit: AuditVisit
    merchant_id: str
    merchant_name: str
    auditor: str | None  # None where the viewer is the merchant: a mystery shopper is anonymous
    findings: list[Finding]
    action: CorrectiveAction | None
    overdue: bool

    @property
    def timezone(self) -> str:
        """The location's zone: a visit's time reads as the clock on the shop's wall."""
        return self.visit.location.timezone


def visit_rows(
    uow: UnitOfWork, visits: Sequence[AuditVisit], today: date, *, show_auditor: bool
) -> list[VisitRow]:
    merchants = audits.merchant_names(uow, (v.merchant_id for v in visits))
    staff = lookups.staff(uow, (v.auditor_id for v in visits)) if show_auditor else {}
    return [
        VisitRow(
            visit=v,
            merchant_id=merchants[v.merchant_id][0],
            merchant_name=merchants[v.merchant_id][1],
            auditor=staff[v.auditor_id].name if v.auditor_id in staff else None,
            findings=audits.findings_of(v.items, v),
            action=v.corrective_action,
            overdue=v.corrective_action is not None
            and audits.is_overdue(v.corrective_action, today),
        )
        for v in visits
    ]


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    fraction: float


def findings_bars(visits: Sequence[AuditVisit], locale: str) -> list[Bar]:
    """One bar per visit, oldest first: how many findings it had, labelled with its day (in the
    location's zone) and outcome."""
    counts = [len(audits.findings_of(v.items, v)) for v in visits]
    tallest = max(counts, default=0) or 1
    return [
        Bar(
            label=f"{day(audits.local_visit_date(v.visited_at, v.location.timezone), locale)}"
            f" · {words(v.outcome)}",
            value=count,
            fraction=count / tallest,
        )
        for v, count in zip(visits, counts, strict=True)
    ]
