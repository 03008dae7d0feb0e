"""The partner's commission statements: its settlement periods with what each settled, and the
CSV and PDF the API serves: the page shared with the merchant portal (web/statements.py), under
the partner's guard and layout; another party's is a 404."""

from __future__ import annotations

from beyondbank.core.authz import Permission
from beyondbank.web.i18n import N_
from beyondbank.web.partner.guards import partner_requires
from beyondbank.web.statements import statements_router

router = statements_router(
    "/partner",
    partner_requires(Permission.SETTLEMENT_READ),
    layout="partner/layout.html",
    title=N_("Commission statements"),
)
