"""Fixtures for the bank core: the gateway on the test's database, a funded account, a payee."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.alliance.models import Merchant
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.models import DepositAccount
from tests import factories as f
from tests.payments import factories as pf


@pytest.fixture
def bank(session_factory: sessionmaker[Session], clock: FixedClock) -> BankCoreGateway:
    return BankCoreGateway(session_factory, clock, timezone="Europe/London")


@dataclass
class Shop:
    account: DepositAccount  # 100.00 GBP, no overdraft, no limits
    merchant: Merchant


@pytest.fixture
def shop(uow: UnitOfWork) -> Shop:
    return Shop(pf.make_account(uow, opening=10_000), f.make_merchant(uow))
