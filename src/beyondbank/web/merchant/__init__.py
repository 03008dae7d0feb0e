"""The merchant portal for a merchant's own people: the home page, redeeming a member's voucher at
the counter, benefits, redemptions and card-linked rewards, settlement statements, reviews and audit visit
results.
Each page asks for the permission its API endpoint asks for."""

from __future__ import annotations

from fastapi import APIRouter

from beyondbank.web.merchant import activity as activity
from beyondbank.web.merchant import audits as audits
from beyondbank.web.merchant import benefits as benefits
from beyondbank.web.merchant import home as home
from beyondbank.web.merchant import redeem as redeem
from beyondbank.web.merchant import reviews as reviews
from beyondbank.web.merchant import statements as statements

router = APIRouter(include_in_schema=False)
for module in (home, redeem, benefits, activity, statements, reviews, audits):
    router.include_router(module.router)
