"""Page-test fixtures: a small alliance (a circle with requirements, a seated merchant, an
applicant, a benefit awaiting approval) and the bank's staff in each role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from beyondbank.alliance import admission, audits, relationships
from beyondbank.alliance.models import (
    Application,
    AuditVisit,
    Circle,
    Merchant,
    MerchantStatus,
    RequirementKind,
)
from beyondbank.alliance.schemas import AuditVisitIn, InteractionIn
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.core.authz import Role
from beyondbank.core.errors import SlotTaken
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f
from tests.benefits import factories as bf


@dataclass
class World:
    admin: User
    rm: User
    auditor: User
    analyst: User
    owner: User  # the seated merchant's admin
    counter: User  # the seated merchant's counter staff
    circle: Circle
    holder: Merchant  # holds the restaurant slot
    applicant: Merchant  # a bakery applying for its slot
    application: Application
    benefit: Benefit  # the holder's, awaiting approval
    visit: AuditVisit  # the auditor's to the holder: no signage, a corrective action open


@pytest.fixture
def world(uow: UnitOfWork) -> World:
    admin = f.make_user(uow, Role.BANK_ADMIN, name="Ada Admin", email="ada@bank.test")
    rm = f.make_user(uow, Role.RELATIONSHIP_MANAGER, name="Raj Manager", email="raj@bank.test")
    auditor = f.make_user(uow, Role.AUDITOR, name="Aud Itor", email="audit@bank.test")
    analyst = f.make_user(uow, Role.ANALYST, name="Ana Lyst", email="analyst@bank.test")
    branch = f.make_branch(uow)
    circle = f.make_circle(uow, name="Canary Wharf", code="canary-wharf", branch_id=branch.id)
    for kind in (RequirementKind.LOCATION_IN_CIRCLE, RequirementKind.SLOT_FREE):
        f.make_requirement(uow, circle, kind)
    f.make_requirement(uow, circle, RequirementKind.MIN_REVIEW_SCORE, {"min": 4.0})
    holder = f.make_merchant(uow, trading_name="Dockside Diner", legal_name="Dockside Diner Ltd")
    f.make_seat(uow, circle, holder)
    owner = f.make_user(uow, Role.MERCHANT_ADMIN, merchant=holder, email="owner@diner.test")
    counter = f.make_user(uow, Role.MERCHANT_STAFF, merchant=holder, email="till@diner.test")
    applicant = f.make_merchant(
        uow,
        sub_industry="bakery_cafe",
        status=MerchantStatus.UNDER_REVIEW,
        trading_name="Wharf Bakery",
    )
    application = admission.submit(uow, f.principal(admin), applicant, circle)
    benefit = bf.make_benefit(
        uow, holder, status=BenefitStatus.SUBMITTED, title="20% off dinner", budget_minor=50_000
    )
    relationships.assign_manager(uow, f.principal(admin), holder, rm.public_id)
    relationships.log_interaction(
        uow,
        f.principal(rm),
        holder,
        InteractionIn(
            kind="visit",
            occurred_at=uow.clock.now(),
            notes="Walked the floor with the owner.",
            next_action="Send the training salon dates",
            next_action_on=date(2026, 11, 22),
        ),
    )
    visit = audits.record_visit(
        uow,
        f.principal(auditor),
        AuditVisitIn.model_validate(
            {
                "merchant_id": holder.public_id,
                "location_id": holder.locations[0].public_id,
                "mode": "mystery_shopper",
                "visited_at": "2026-11-20T19:30:00+00:00",
                "staff_knew_programme": True,
                "card_accepted": True,
                "signage_displayed": False,
                "items": [
                    {
                        "description": "Dinner for two",
                        "currency": "GBP",
                        "public_price_minor": 6400,
                        "alliance_price_minor": 5120,
                        "benefit_honoured": True,
                    }
                ],
                "notes": "No alliance sticker at the door or the till.",
                "corrective_action": "Display the alliance sticker at the door and the till.",
            }
        ),
    )
    return World(
        admin,
        rm,
        auditor,
        analyst,
        owner,
        counter,
        circle,
        holder,
        applicant,
        application,
        benefit,
        visit,
    )


def waitlisted(uow: UnitOfWork, world: World, merchant: Merchant) -> Application:
    """The merchant applies for the world's circle and, its slot being held, joins the waitlist."""
    application = admission.submit(uow, f.principal(world.admin), merchant, world.circle)
    with pytest.raises(SlotTaken):
        admission.approve(uow, f.principal(world.admin), application, "the slot is held")
    return application
