"""This merchant's settlement periods and their statements, with the CSV and PDF downloads the API
serves: the page shared with the partner portal (web/statements.py), under the merchant's guard
and layout; another merchant's statement is a 404."""

from __future__ import annotations

from beyondbank.core.authz import Permission
from beyondbank.web.i18n import N_
from beyondbank.web.merchant.guards import merchant_requires
from beyondbank.web.statements import statements_router

router = statements_router(
    "/merchant",
    merchant_requires(Permission.SETTLEMENT_READ),
    layout="merchant/layout.html",
    title=N_("Settlement statements"),
)
