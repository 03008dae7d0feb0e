"""Alliance test fixtures: the bank's staff as users (for bearer headers) and as principals."""

from __future__ import annotations

import pytest

from beyondbank.core.authz import Principal, Role
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f


@pytest.fixture
def admin_user(uow: UnitOfWork) -> User:
    return f.make_user(uow, Role.BANK_ADMIN, name="Ada Admin")


@pytest.fixture
def admin(admin_user: User) -> Principal:
    return f.principal(admin_user)


@pytest.fixture
def rm_user(uow: UnitOfWork) -> User:
    return f.make_user(uow, Role.RELATIONSHIP_MANAGER, name="Raj Manager")


@pytest.fixture
def rm(rm_user: User) -> Principal:
    return f.principal(rm_user)
