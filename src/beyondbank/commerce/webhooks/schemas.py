"""Request and response shapes of the partner webhook endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from beyondbank.commerce.models import DeliveryStatus


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=500, examples=["https://partner.example/hooks"])
    event_types: list[str] = Field(
        default_factory=list, description="Only these events (empty: every event)"
    )
    partner_id: str | None = Field(
        default=None, description="The partner's id: required for bank staff"
    )


class EndpointOut(BaseModel):
    id: str
    partner_id: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime
    previous_secret_valid_until: datetime | None = Field(
        default=None,
        description="After a rotation: until then deliveries are signed with the previous "
        "secret too (a second signature in `webhook-signature`)",
    )


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: int | None = Field(
        default=None,
        ge=0,
        le=168,
        description="How long the old secret still signs beside the new one (0: it stops now); "
        "default: the bank's setting (24 hours)",
    )


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(
        description="`whsec_…`: the signing secret, shown only in this answer; keep it safe"
    )


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="The `webhook-id` header the receiver dedupes on")
    event_type: str
    endpoint_id: str
    partner_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending")
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    event_created_at: datetime
