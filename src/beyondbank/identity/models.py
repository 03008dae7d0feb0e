"""Who can sign in: users (staff and merchant), partner API clients, and the bank's customers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from beyondbank.core.authz import Role
from beyondbank.core.db import Base, IdMixin, str_enum


class User(IdMixin, Base):
    """A person who signs in with a password: bank staff, or a merchant's admin or staff."""

    __tablename__ = "users"
    __table_args__ = (
        # Merchant roles are bound to their merchant, partner roles to their partner; staff
        # roles to neither.
        CheckConstraint(
            "(role IN ('merchant_admin', 'merchant_staff')) = (merchant_id IS NOT NULL)",
            name="merchant_role_bound",
        ),
        CheckConstraint(
            "(role IN ('partner_admin', 'partner_staff')) = (partner_id IS NOT NULL)",
            name="partner_role_bound",
        ),
        CheckConstraint("role <> 'customer'", name="not_customer"),
    )

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class ApiClient(IdMixin, Base):
    """A partner system using OAuth2 client credentials, limited to its scopes."""

    __tablename__ = "api_clients"
    __table_args__ = (
        CheckConstraint("merchant_id IS NULL OR partner_id IS NULL", name="one_organisation"),
    )

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]]
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class Customer(IdMixin, Base):
    """A bank customer, known by the bank's own reference (the SSO token's subject)."""

    __tablename__ = "customers"

    bank_ref: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
