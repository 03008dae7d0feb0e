"""The bank staff's console: programme overview, circles, merchants, applications, benefits,
relationships, mystery-shopper audit visits, card-linked runs, the descriptor review queue,
settlement, users and roles, and the audit trail. Each page asks for the permission its API endpoint asks for."""

from __future__ import annotations

from fastapi import APIRouter

from beyondbank.web.console import (
    applications,
    audit,
    audits,
    benefits,
    cards,
    circles,
    merchants,
    overview,
    relationships,
    settlement,
    users,
)

router = APIRouter(include_in_schema=False)
for module in (
    overview,
    circles,
    merchants,
    applications,
    benefits,
    relationships,
    audits,
    cards,
    settlement,
    users,
    audit,
):
    router.include_router(module.router)
