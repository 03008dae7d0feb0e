"""The partner portal for a shop partner's own people: its orders (moved along the transition
table where the partner may), stock levels, group buys with the purchase order, support tickets
with the overdue ones marked, and its commission statements. Each page asks for the permission
its API endpoint asks for, and shows only the partner's own."""

from __future__ import annotations

from fastapi import APIRouter

from beyondbank.web.partner import catalog as catalog
from beyondbank.web.partner import orders as orders
from beyondbank.web.partner import statements as statements
from beyondbank.web.partner import support as support

router = APIRouter(include_in_schema=False)
for module in (orders, catalog, support, statements):
    router.include_router(module.router)
