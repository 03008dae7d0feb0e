"""Commerce tables. For now the partner organisation itself, which settlement and payments need."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from beyondbank.core.db import Base, IdMixin, str_enum


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class Partner(IdMixin, Base):
    """An e-commerce partner selling in the bank's app; the bank settles with it monthly."""

    __tablename__ = "partners"

    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[PartnerStatus] = mapped_column(str_enum(PartnerStatus))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    settlement_iban: Mapped[str | None] = mapped_column(String(34))
    settlement_bic: Mapped[str | None] = mapped_column(String(11))
    created_at: Mapped[datetime]
