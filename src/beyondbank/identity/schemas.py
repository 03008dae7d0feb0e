"""Request and response shapes for sign-in, tokens, users and API clients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from beyondbank.core.authz import Role


class PasswordLogin(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class SsoExchange(BaseModel):
    token: str = Field(min_length=1, max_length=8192, description="The bank app's signed JWT")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105
    expires_in: int
    scope: str | None = None


class MeOut(BaseModel):
    kind: str
    id: str
    label: str
    role: str | None
    merchant_id: str | None
    partner_id: str | None = None
    permissions: list[str]


class UserIn(BaseModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: Role
    merchant_id: str | None = Field(default=None, description="Required for merchant roles")
    partner_id: str | None = Field(default=None, description="Required for partner roles")
    password: str = Field(min_length=12, max_length=1024)


class UserPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    role: Role | None = Field(
        default=None, description="Another role of the same kind (bank, merchant or partner)"
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    role: Role
    merchant_id: str | None
    partner_id: str | None = None
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    merchant_id: str | None = None
    partner_id: str | None = None


class ApiClientOut(BaseModel):
    id: str
    client_id: str
    name: str
    scopes: list[str]
    merchant_id: str | None
    partner_id: str | None = None
    active: bool
    created_at: datetime


class ApiClientCreated(ApiClientOut):
    client_secret: str = Field(description="Shown once; store it in the partner system's vault")


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: str
    actor_label: str
    actor_role: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
