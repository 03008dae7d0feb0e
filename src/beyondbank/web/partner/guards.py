"""Who may open each partner page: a shop partner's own user holding the permission that the
matching API endpoint requires (staff read and move orders and answer tickets; the admin also
runs group buys and reads the commission statements)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import Forbidden
from beyondbank.web.i18n import _
from beyondbank.web.session import partner_page

P = Permission


def partner_requires(permission: Permission) -> Callable[[Principal], Principal]:
    def dependency(principal: Annotated[Principal, Depends(partner_page)]) -> Principal:
        if permission not in principal.permissions:
            raise Forbidden(
                _("Your role does not include %(permission)s.", permission=permission.value)
            )
        return principal

    return dependency


OrderReader = Annotated[Principal, Depends(partner_requires(P.ORDERS_READ))]
OrderMover = Annotated[Principal, Depends(partner_requires(P.ORDERS_FULFIL))]
ShopReader = Annotated[Principal, Depends(partner_requires(P.SHOP_READ))]
GroupBuyManager = Annotated[Principal, Depends(partner_requires(P.GROUPBUY_MANAGE))]
SupportReader = Annotated[Principal, Depends(partner_requires(P.SUPPORT_READ))]
SupportWriter = Annotated[Principal, Depends(partner_requires(P.SUPPORT_WRITE))]
