"""The customer's pages (mobile first, embedded in the bank's app): sign-on and my membership card,
the benefits near me and a benefit's page, my card-linked rewards and redemptions."""

from __future__ import annotations

from fastapi import APIRouter

from beyondbank.web.customer import benefits, membership, rewards
from beyondbank.web.customer.membership import CONSENT_VERSION, member_code

router = APIRouter(include_in_schema=False)
router.include_router(membership.router)
router.include_router(benefits.router)
router.include_router(rewards.router)

__all__ = ["CONSENT_VERSION", "member_code", "router"]
