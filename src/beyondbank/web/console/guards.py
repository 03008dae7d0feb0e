"""Who may open each console page: the same permission the matching API endpoint requires."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from beyondbank.core.authz import Permission, Principal
from beyondbank.web.session import page_requires

P = Permission

StatsReader = Annotated[Principal, Depends(page_requires(P.STATS_READ))]
CircleReader = Annotated[Principal, Depends(page_requires(P.CIRCLES_READ))]
CircleWriter = Annotated[Principal, Depends(page_requires(P.CIRCLES_WRITE))]
MerchantReader = Annotated[Principal, Depends(page_requires(P.MERCHANTS_READ))]
LifecycleManager = Annotated[Principal, Depends(page_requires(P.MERCHANTS_LIFECYCLE))]
ApplicationReader = Annotated[Principal, Depends(page_requires(P.APPLICATIONS_READ))]
Decider = Annotated[Principal, Depends(page_requires(P.APPLICATIONS_DECIDE))]
BenefitReader = Annotated[Principal, Depends(page_requires(P.BENEFITS_READ))]
BenefitApprover = Annotated[Principal, Depends(page_requires(P.BENEFITS_APPROVE))]
RelationshipReader = Annotated[Principal, Depends(page_requires(P.RELATIONSHIP_READ))]
RelationshipWriter = Annotated[Principal, Depends(page_requires(P.RELATIONSHIP_WRITE))]
ManagerAssigner = Annotated[Principal, Depends(page_requires(P.RELATIONSHIP_ASSIGN))]
AuditReader = Annotated[Principal, Depends(page_requires(P.AUDIT_READ))]
VisitReader = Annotated[Principal, Depends(page_requires(P.VISITS_READ))]
VisitRecorder = Annotated[Principal, Depends(page_requires(P.VISITS_RECORD))]
ActionCloser = Annotated[Principal, Depends(page_requires(P.VISITS_CLOSE))]
CardReader = Annotated[Principal, Depends(page_requires(P.CARDS_READ))]
CardReviewer = Annotated[Principal, Depends(page_requires(P.CARDS_REVIEW))]
SettlementReader = Annotated[Principal, Depends(page_requires(P.SETTLEMENT_READ))]
UserManager = Annotated[Principal, Depends(page_requires(P.USERS_MANAGE))]
