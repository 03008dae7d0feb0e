"""Writing a validated plan through the areas' own use cases, in the order the programme needs.

Branches, circles and their requirements; merchants with their verification and managers;
seats (an application, its checks, its approval), then open and waitlisted applications; then
each merchant's final status (an exit now offers its freed slots to the waitlist); members and
their cards; benefits and their approval. Every step is the use case the API calls, so it keeps
the audit trail and every rule; a use case that still refuses is reported against the entry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from beyondbank.alliance import admission, membership, people, relationships
from beyondbank.alliance import circles as circle_cases
from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance.models import (
    Application,
    Circle,
    KybStatus,
    Merchant,
    MerchantStatus,
    RequirementKind,
)
from beyondbank.benefits import service as benefit_cases
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.benefits.schemas import ApproveIn
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem, SlotTaken
from beyondbank.core.uow import UnitOfWork
from beyondbank.program.schemas import BenefitEntry, MerchantEntry
from beyondbank.program.source import DataPath, Issue
from beyondbank.program.validation import Entry, ImportRejected, Plan

IMPORT_NOTE = "imported from the existing programme"
S = MerchantStatus
# The lifecycle steps to each status a file may give, from a merchant just created (`applied`).
_STATUS_PATHS: dict[MerchantStatus, tuple[MerchantStatus, ...]] = {
    S.APPLIED: (),
    S.UNDER_REVIEW: (S.UNDER_REVIEW,),
    S.ADMITTED: (S.UNDER_REVIEW, S.ADMITTED),
    S.ACTIVE: (S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE),
    S.SUSPENDED: (S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE, S.SUSPENDED),
    S.EXITED: (S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE, S.EXITED),
    S.REJECTED: (S.UNDER_REVIEW, S.REJECTED),
}


class Progress(Protocol):
    """Told how far the import has got, stage by stage (a progress bar, a log, nothing)."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, steps: int = 1) -> None: ...


class NoProgress:
    def start(self, stage: str, total: int) -> None:
        return None

    def advance(self, stage: str, steps: int = 1) -> None:
        return None


@dataclass(slots=True)
class Summary:
    """What an import creates: counts by kind, merchants and benefits by status."""

    counts: dict[str, int] = field(default_factory=dict)
    merchant_statuses: Counter[str] = field(default_factory=Counter)
    benefit_statuses: Counter[str] = field(default_factory=Counter)


def summarise(plan: Plan) -> Summary:
    merchants = [e.model for e in plan.merchants]
    members = [e.model for e in plan.members]
    summary = Summary()
    summary.counts = {
        "branches": len(plan.branches),
        "circles": len(plan.circles),
        "admission requirements": sum(len(e.model.requirements) for e in plan.circles),
        "merchants": len(merchants),
        "locations": sum(len(m.locations) for m in merchants),
        "terminals": sum(len(loc.terminals) for m in merchants for loc in m.locations),
        "contacts": sum(len(m.contacts) for m in merchants),
        "seats": sum(len(m.circles) for m in merchants),
        "open applications": sum(len(m.applications) for m in merchants),
        "waitlisted": sum(a.waitlist for m in merchants for a in m.applications),
        "manager assignments": sum(
            m.manager is not None and m.manager.lower() in plan.existing.managers for m in merchants
        ),
        "members": len(members),
        "cards": sum(len(m.cards) for m in members),
        "benefits": len(plan.benefits),
    }
    summary.merchant_statuses = Counter(m.status.value for m in merchants)
    summary.benefit_statuses = Counter(e.model.status.value for e in plan.benefits)
    return summary


def stages(plan: Plan) -> dict[str, int]:
    """The stages of the write and how many steps each has, for a progress display."""
    merchants = [e.model for e in plan.merchants]
    return {
        "branches and circles": len(plan.branches) + len(plan.circles),
        "merchants": len(merchants),
        "seats and applications": sum(len(m.circles) + len(m.applications) for m in merchants)
        + len(merchants),
        "members": len(plan.members),
        "benefits": len(plan.benefits),
    }


class Writer:
    def __init__(
        self,
        uow: UnitOfWork,
        plan: Plan,
        actor: Principal,
        *,
        default_currency: str,
        progress: Progress,
    ) -> None:
        self.uow = uow
        self.plan = plan
        self.actor = actor
        self.default_currency = default_currency
        self.progress = progress
        self.branch_ids = {code: b.public_id for code, b in plan.existing.branches.items()}
        self.circles: dict[str, Circle] = dict(plan.existing.circles)
        self.merchants: dict[str, Merchant] = {}

    def write(self) -> None:
        for stage, total in stages(self.plan).items():
            self.progress.start(stage, total)
        self._branches_and_circles()
        self._merchants()
        self._admissions()
        self._members()
        self._benefits()

    @contextmanager
    def _entry(self, path: DataPath) -> Iterator[None]:
        """A use case's refusal, reported against the entry (and field) that caused it."""
        try:
            yield
        except Problem as problem:
            raise ImportRejected(self._issues(path, problem)) from problem
        except SQLAlchemyError as exc:
            message = f"the database refused it: {getattr(exc, 'orig', exc)}"
            raise ImportRejected([self.plan.document.issue(path, message)]) from exc

    def _issues(self, path: DataPath, problem: Problem) -> list[Issue]:
        document = self.plan.document
        if not problem.errors:
            return [document.issue(path, problem.detail)]
        issues = []
        for error in problem.errors:
            parts = error.field.split(".")
            if parts and parts[0] == "body":
                parts = parts[1:]
            where = (*path, *(int(p) if p.isdigit() else p for p in parts))
            issues.append(document.issue(where, f"{error.message} ({problem.detail})"))
        return issues

    # -- branches and circles ---------------------------------------------------------------------

    def _branches_and_circles(self) -> None:
        stage = "branches and circles"
        for entry in self.plan.branches:
            with self._entry(entry.path):
                branch = circle_cases.create_branch(self.uow, self.actor, entry.model)
            self.branch_ids[branch.code] = branch.public_id
            self.progress.advance(stage)
        for circle_entry in self.plan.circles:
            model = circle_entry.model
            anchor = self.branch_ids[model.branch] if model.branch else None
            with self._entry(circle_entry.path):
                circle = circle_cases.create_circle(
                    self.uow, self.actor, model.model_copy(update={"branch_id": anchor})
                )
                if model.requirements:
                    circle_cases.replace_requirements(
                        self.uow, self.actor, circle, model.requirements
                    )
            self.circles[circle.code] = circle
            self.progress.advance(stage)

    # -- merchants ---------------------------------------------------------------------------------

    def _merchants(self) -> None:
        managers = self.plan.existing.managers
        for entry in self.plan.merchants:
            model = entry.model
            with self._entry(entry.path):
                merchant = merchant_cases.create_merchant(self.uow, self.actor, model)
                if model.reviews is not None:
                    merchant_cases.record_reviews(
                        self.uow,
                        self.actor,
                        merchant,
                        score=model.reviews.score,
                        count=model.reviews.count,
                        source=model.reviews.source,
                    )
                if model.licence_verified:
                    merchant_cases.record_licence_verification(
                        self.uow, self.actor, merchant, verified=True, note=IMPORT_NOTE
                    )
                if model.kyb != KybStatus.PENDING:
                    merchant_cases.record_kyb(
                        self.uow, self.actor, merchant, result=model.kyb, note=IMPORT_NOTE
                    )
            manager = managers.get(model.manager.lower()) if model.manager else None
            if manager is not None:
                with self._entry((*entry.path, "manager")):
                    relationships.assign_manager(self.uow, self.actor, merchant, manager.public_id)
            self.merchants[model.ref] = merchant
            self.progress.advance("merchants")

    # -- seats, applications, statuses --------------------------------------------------------------

    def _admissions(self) -> None:
        stage = "seats and applications"
        for entry in self.plan.merchants:
            merchant = self.merchants[entry.model.ref]
            for j, code in enumerate(entry.model.circles):
                with self._entry((*entry.path, "circles", j)):
                    application = self._apply(merchant, code, confirm=True)
                    admission.approve(self.uow, self.actor, application, IMPORT_NOTE)
                self.progress.advance(stage)
        for entry in self.plan.merchants:
            merchant = self.merchants[entry.model.ref]
            for j, wanted in enumerate(entry.model.applications):
                path = (*entry.path, "applications", j)
                with self._entry(path):
                    application = self._apply(merchant, wanted.circle, confirm=wanted.waitlist)
                    if wanted.waitlist:
                        self._join_waitlist(path, application)
                self.progress.advance(stage)
        # Statuses last: an exit releases seats and offers them to the waitlists joined above.
        for entry in self.plan.merchants:
            with self._entry((*entry.path, "status")):
                self._reach_status(self.merchants[entry.model.ref], entry.model)
            self.progress.advance(stage)

    def _apply(self, merchant: Merchant, code: str, *, confirm: bool) -> Application:
        application = admission.submit(self.uow, self.actor, merchant, self.circles[code])
        if confirm:
            # A migrated seat was admitted by the bank before: its manual checks were done then.
            for check in list(application.checks):
                if check.kind == RequirementKind.MANUAL_CHECK and check.passed is None:
                    admission.confirm_check(
                        self.uow,
                        self.actor,
                        application,
                        check.public_id,
                        passed=True,
                        note=IMPORT_NOTE,
                    )
        return application

    def _join_waitlist(self, path: DataPath, application: Application) -> None:
        """Approving for a held slot puts the application on the slot's waitlist, in file order."""
        try:
            admission.approve(self.uow, self.actor, application, IMPORT_NOTE)
        except SlotTaken:
            return
        message = "the slot was free, so the application took the seat instead of waiting"
        raise ImportRejected([self.plan.document.issue(path, message)])

    def _reach_status(self, merchant: Merchant, model: MerchantEntry) -> None:
        path = _STATUS_PATHS[model.status]
        current = merchant.status
        steps = path[path.index(current) + 1 :] if current in path else path
        for i, status in enumerate(steps):
            last = i == len(steps) - 1
            reason = (model.status_reason or IMPORT_NOTE) if last else IMPORT_NOTE
            merchant_cases.change_status(self.uow, self.actor, merchant, status, reason)

    # -- members -----------------------------------------------------------------------------------

    def _members(self) -> None:
        for entry in self.plan.members:
            model = entry.model
            with self._entry(entry.path):
                member = membership.enrol(
                    self.uow,
                    self.actor,
                    customer_id=people.customer_for_bank_ref(self.uow, model.bank_ref),
                    consent_version=model.consent.text_version,
                    consent_channel=model.consent.channel,
                    consent_granted_at=model.consent.granted_at,
                    home=model.home,
                    work=model.work,
                    attributes=model.attributes,
                )
            for j, card in enumerate(model.cards):
                with self._entry((*entry.path, "cards", j)):
                    membership.link_card(self.uow, self.actor, member, card)
            self.progress.advance("members")

    # -- benefits ----------------------------------------------------------------------------------

    def _benefits(self) -> None:
        for entry in self.plan.benefits:
            with self._entry(entry.path):
                benefit = self._benefit(entry)
            with self._entry((*entry.path, "status")):
                self._reach_benefit_status(benefit, entry.model)
            self.progress.advance("benefits")

    def _benefit(self, entry: Entry[BenefitEntry]) -> Benefit:
        model = entry.model
        data = model.model_copy(
            update={
                "merchant_id": self.merchants[model.merchant].public_id,
                "target_circle_ids": [self.circles[c].public_id for c in model.target_circles],
            }
        )
        benefit = benefit_cases.add_benefit(
            self.uow, self.actor, data, default_currency=self.default_currency
        )
        self.uow.commit()
        return benefit

    def _reach_benefit_status(self, benefit: Benefit, model: BenefitEntry) -> None:
        uow, actor, status = self.uow, self.actor, model.status
        reason = model.status_reason or IMPORT_NOTE
        if status == BenefitStatus.ENDED:
            benefit_cases.end(uow, actor, benefit, reason)
            return
        if status == BenefitStatus.DRAFT:
            return
        benefit_cases.submit(uow, actor, benefit)
        if status == BenefitStatus.REJECTED:
            benefit_cases.reject(uow, actor, benefit, reason)
        elif status in (BenefitStatus.ACTIVE, BenefitStatus.PAUSED):
            benefit_cases.approve(uow, actor, benefit, ApproveIn(note=IMPORT_NOTE))
            if status == BenefitStatus.PAUSED:
                benefit_cases.pause(uow, actor, benefit, reason)
