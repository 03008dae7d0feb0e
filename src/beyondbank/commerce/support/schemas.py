"""Request and response shapes of support tickets and the NPS survey."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from beyondbank.commerce.models import TicketStatus


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str | None = Field(default=None, description="The order it is about, if any")
    partner_id: str | None = Field(default=None, description="Required without an order")
    subject: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=5_000)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=5_000)


class MessageOut(BaseModel):
    author: Literal["customer", "partner", "bank"]
    body: str
    sent_at: datetime


class TicketOut(BaseModel):
    id: str
    partner_id: str
    order_id: str | None
    customer_id: str | None = Field(description="Shown to the customer and the bank only")
    subject: str
    status: TicketStatus
    opened_at: datetime
    first_response_due_at: datetime
    first_responded_at: datetime | None
    resolution_due_at: datetime
    resolved_at: datetime | None
    updated_at: datetime


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]


class BreachOut(BaseModel):
    target: Literal["first_response", "resolution"]
    due_at: datetime
    late_by_minutes: int


class OverdueTicketOut(TicketOut):
    breaches: list[BreachOut]


class OverdueOut(BaseModel):
    as_of: datetime
    items: list[OverdueTicketOut]


class NpsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=0, le=10, description="How likely to recommend, 0 to 10")
    comment: str | None = Field(default=None, max_length=1_000)


class NpsOut(BaseModel):
    order_id: str
    partner_id: str
    score: int
    category: Literal["promoter", "passive", "detractor"]
    comment: str | None
    answered_at: datetime


class TallyOut(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: int | None = Field(description="−100 to 100; null without responses")


class PartnerTallyOut(TallyOut):
    partner_id: str
    partner_name: str


class MonthTallyOut(TallyOut):
    month: str = Field(examples=["2026-11"])


class NpsSummaryOut(BaseModel):
    overall: TallyOut
    by_partner: list[PartnerTallyOut]
    by_month: list[MonthTallyOut]
