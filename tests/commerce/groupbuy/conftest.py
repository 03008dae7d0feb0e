"""Fixtures for group buying: the bank core gateway on the test's database, and wrappers that
count refunds or fail them, for the closing tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.clock import FixedClock
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import PaymentResult


@pytest.fixture
def bank(session_factory: sessionmaker[Session], clock: FixedClock) -> BankCoreGateway:
    return BankCoreGateway(session_factory, clock, timezone="Europe/London")


@dataclass
class FlakyBank:
    """The bank core, but refusing refunds of the payments in `down` with a connection error,
    as a bank that is unreachable for some calls; counts every refund call it passes on."""

    inner: BankCoreGateway
    down: set[str] = field(default_factory=set)
    refund_calls: list[tuple[str, str, int | None]] = field(default_factory=list)

    def refund(
        self,
        payment_id: str,
        *,
        key: str,
        amount_minor: int | None = None,
        actor: Principal = SYSTEM,
    ) -> PaymentResult:
        if payment_id in self.down:
            raise ConnectionError("bank core unreachable")
        self.refund_calls.append((payment_id, key, amount_minor))
        return self.inner.refund(payment_id, key=key, amount_minor=amount_minor, actor=actor)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


@pytest.fixture
def flaky(bank: BankCoreGateway) -> FlakyBank:
    return FlakyBank(bank)
