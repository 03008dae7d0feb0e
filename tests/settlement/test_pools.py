"""Co-funding pools: contributions from each side, draws refused beyond the balance, retries."""

from __future__ import annotations

import pytest

from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.errors import (
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    NotFound,
)
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.settlement import contracts, pools
from beyondbank.settlement.models import CommissionContract, Pool
from beyondbank.settlement.schemas import PoolIn
from tests import factories as f
from tests.settlement import factories as sf


def _pool(uow: UnitOfWork, **terms: object) -> tuple[CommissionContract, Pool]:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(uow, merchant.public_id, **terms)
    pool = pools.create_pool(uow, SYSTEM, PoolIn(contract_id=contract.public_id, name="Spring"))
    return contract, pool


def test_each_side_contributes_and_campaigns_draw(uow: UnitOfWork) -> None:
    contract, pool = _pool(uow, pool_party_share_bps=6_000)
    joint = pools.contribute(uow, SYSTEM, pool, amount_minor=999, key="j")
    assert (joint.party_minor, joint.bank_minor) == (599, 400)  # 599.4 → 599; the bank: 400
    party = pools.contribute(uow, SYSTEM, pool, amount_minor=100, key="p", side="party")
    bank = pools.contribute(uow, SYSTEM, pool, amount_minor=50, key="b", side="bank")
    assert (party.party_minor, party.bank_minor, bank.party_minor, bank.bank_minor) == (
        100,
        0,
        0,
        50,
    )
    assert pools.balance_minor(uow, pool) == 1_149
    receivable = contracts.receivable_account(uow, contract)
    assert ledger.balance(uow, receivable).posted.amount == 699  # the party owes its part
    expense = chart.benefit_expense(uow, "GBP")
    before = ledger.balance(uow, expense).posted.amount
    pools.draw(uow, SYSTEM, pool, amount_minor=1_000, key="d", campaign_ref="spring-sale")
    assert pools.balance_minor(uow, pool) == 149
    assert ledger.balance(uow, expense).posted.amount == before - 1_000
    assert verify.run(uow.session).ok


def test_a_draw_beyond_the_balance_is_refused_and_writes_nothing(uow: UnitOfWork) -> None:
    _, pool = _pool(uow)
    pools.contribute(uow, SYSTEM, pool, amount_minor=500, key="c", side="bank")
    with pytest.raises(InsufficientBalance) as refused:
        pools.draw(uow, SYSTEM, pool, amount_minor=501, key="too-much", campaign_ref="x")
    assert refused.value.status == 409
    assert pools.balance_minor(uow, pool) == 500
    assert ledger.transaction_by_key(uow, f"pool:{pool.public_id}:draw:too-much") is None
    pools.draw(uow, SYSTEM, pool, amount_minor=500, key="all", campaign_ref="x")
    assert pools.balance_minor(uow, pool) == 0


def test_a_repeated_key_replays_and_a_reused_key_is_refused(uow: UnitOfWork) -> None:
    _, pool = _pool(uow)
    pools.contribute(uow, SYSTEM, pool, amount_minor=1_000, key="c", side="bank")
    first = pools.draw(uow, SYSTEM, pool, amount_minor=300, key="k", campaign_ref="x")
    again = pools.draw(uow, SYSTEM, pool, amount_minor=300, key="k", campaign_ref="x")
    assert again.replayed
    assert not first.replayed
    assert again.transaction.public_id == first.transaction.public_id
    assert pools.balance_minor(uow, pool) == 700
    with pytest.raises(IdempotencyKeyReused):
        pools.draw(uow, SYSTEM, pool, amount_minor=301, key="k", campaign_ref="x")
    with pytest.raises(InvalidInput):
        pools.draw(uow, SYSTEM, pool, amount_minor=1, key="", campaign_ref="x")
    long_key = "k" * 255
    moved = pools.draw(uow, SYSTEM, pool, amount_minor=1, key=long_key, campaign_ref="x")
    assert len(moved.transaction.idempotency_key) <= 255


def test_pools_belong_to_their_merchant(uow: UnitOfWork) -> None:
    contract, pool = _pool(uow)
    merchant = f.make_merchant(uow)
    admin = f.principal(f.make_user(uow, Role.MERCHANT_ADMIN, merchant))
    with pytest.raises(NotFound):
        pools.get_pool(uow, admin, pool.public_id)
    rows, _ = pools.list_pools(uow, admin, limit=10)
    assert rows == []
    with pytest.raises(Forbidden):
        pools.create_pool(uow, admin, PoolIn(contract_id=contract.public_id, name="Mine"))
    with pytest.raises(Conflict):
        pools.create_pool(uow, SYSTEM, PoolIn(contract_id=contract.public_id, name="Spring"))
