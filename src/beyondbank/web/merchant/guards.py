"""Who may open each merchant page: a merchant's own user holding the permission that the matching
API endpoint requires (counter staff redeem; the admin also manages benefits and reads statements)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import Forbidden
from beyondbank.web.i18n import _
from beyondbank.web.session import merchant_page

P = Permission


def merchant_requires(permission: Permission) -> Callable[[Principal], Principal]:
    def dependency(principal: Annotated[Principal, Depends(merchant_page)]) -> Principal:
        if permission not in principal.permissions:
            raise Forbidden(
                _("Your role does not include %(permission)s.", permission=permission.value)
            )
        return principal

    return dependency


def merchant_id_of(principal: Principal) -> int:
    """The merchant a merchant page's user works for (the page guard has made sure there is one)."""
    assert principal.merchant_id is not None
    return principal.merchant_id


Redeemer = Annotated[Principal, Depends(merchant_requires(P.REDEMPTIONS_CREATE))]
RedemptionReader = Annotated[Principal, Depends(merchant_requires(P.REDEMPTIONS_READ))]
BenefitReader = Annotated[Principal, Depends(merchant_requires(P.BENEFITS_READ))]
BenefitWriter = Annotated[Principal, Depends(merchant_requires(P.BENEFITS_WRITE))]
RewardReader = Annotated[Principal, Depends(merchant_requires(P.CARDS_READ))]
ProfileReader = Annotated[Principal, Depends(merchant_requires(P.MERCHANTS_READ))]
VisitReader = Annotated[Principal, Depends(merchant_requires(P.VISITS_READ))]
