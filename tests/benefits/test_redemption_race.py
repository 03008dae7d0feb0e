"""Redemptions racing on PostgreSQL: fifty at once against room for ten, and one code scanned twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.alliance.models import Member
from beyondbank.benefits import redemptions
from beyondbank.benefits.models import Benefit, BenefitUsage, Redemption
from beyondbank.benefits.schemas import RedemptionIn
from beyondbank.core.authz import Principal, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Problem
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.models import IdempotencyRecord
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.identity.service import principal_for_user
from tests import factories as f
from tests import races
from tests.benefits import factories as bf

THREADS = 50
ROOM = 10


@dataclass
class Scene:
    actor: Principal
    benefit_id: str
    benefit_pk: int
    members: list[Member]


def _scene(engine: Engine, clock: FixedClock, members: int, **benefit: Any) -> Scene:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        merchant = f.make_merchant(uow)
        staff = f.make_user(uow, Role.MERCHANT_STAFF, merchant)
        made = bf.make_benefit(uow, merchant, **benefit)
        people = [f.make_member(uow) for _ in range(members)]
        uow.commit()
        return Scene(principal_for_user(staff), made.public_id, made.id, people)


def _race(
    engine: Engine, clock: FixedClock, count: int, attempt: Callable[[UnitOfWork, int], str]
) -> list[str | Problem]:
    return races.in_units(engine, clock, count, attempt)


def _redeemer(
    scene: Scene, settings: Settings, clock: FixedClock, member_for: Callable[[int], Member]
) -> Callable[[UnitOfWork, int], str]:
    def attempt(uow: UnitOfWork, i: int) -> str:
        request = RedemptionIn(
            code=bf.code_at(settings, member_for(i), clock.now()),
            benefit_id=scene.benefit_id,
            purchase_amount_minor=5000,
        )
        outcome = redemptions.redeem(
            uow,
            scene.actor,
            request,
            secret=settings.secret_key.get_secret_value(),
            idempotency_key=f"race-{i}",
            fingerprint=fingerprint("POST", "/api/v1/redemptions", request.model_dump(mode="json")),
            lock_seconds=60,
            render=lambda r: {"id": r.public_id, "reward_minor": r.reward_minor},
        )
        assert outcome.status_code == 201
        return str(outcome.body["id"])

    return attempt


def _tally(results: list[str | Problem]) -> tuple[int, Counter[tuple[int, str]]]:
    wins = sum(1 for r in results if isinstance(r, str) and r.startswith("red_"))
    refusals = Counter((r.status, r.slug) for r in results if isinstance(r, Problem))
    return wins, refusals


def _state(engine: Engine, clock: FixedClock, benefit_pk: int) -> dict[str, Any]:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        benefit = uow.session.get_one(Benefit, benefit_pk)
        granted = uow.session.scalar(
            select(func.coalesce(func.sum(Redemption.reward_minor), 0)).where(
                Redemption.benefit_id == benefit_pk
            )
        )
        return {
            "quantity_remaining": benefit.quantity_remaining,
            "budget_remaining": benefit.budget_remaining_minor,
            "redemptions": uow.session.scalar(select(func.count()).select_from(Redemption)),
            "granted": granted,
            "uses": uow.session.scalar(select(func.coalesce(func.sum(BenefitUsage.uses), 0))),
            "claims": Counter(uow.session.scalars(select(IdempotencyRecord.state))),
        }


@pytest.mark.postgres
def test_fifty_redemptions_against_a_quantity_of_ten(
    committing_engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, THREADS, quantity=ROOM)
    results = _race(
        committing_engine,
        clock,
        THREADS,
        _redeemer(scene, settings, clock, lambda i: scene.members[i]),
    )
    wins, refusals = _tally(results)
    assert wins == ROOM
    assert refusals == Counter({(409, "limit-reached"): THREADS - ROOM})
    assert all(
        "All 10 of this benefit have been redeemed" in str(r)
        for r in results
        if isinstance(r, Problem)
    )
    state = _state(committing_engine, clock, scene.benefit_pk)
    assert state["quantity_remaining"] == 0
    assert state["redemptions"] == ROOM
    assert state["uses"] == ROOM  # refused attempts rolled back their usage rows
    assert state["claims"] == Counter({"completed": ROOM})  # refused claims were released


@pytest.mark.postgres
def test_fifty_redemptions_against_a_budget_for_exactly_ten(
    committing_engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    # 20% of £50.00 is £10.00 a time: £100.00 pays for exactly ten rewards.
    scene = _scene(committing_engine, clock, THREADS, budget_minor=ROOM * 1000)
    results = _race(
        committing_engine,
        clock,
        THREADS,
        _redeemer(scene, settings, clock, lambda i: scene.members[i]),
    )
    wins, refusals = _tally(results)
    assert wins == ROOM
    assert refusals == Counter({(409, "limit-reached"): THREADS - ROOM})
    state = _state(committing_engine, clock, scene.benefit_pk)
    assert state["budget_remaining"] == 0
    assert state["granted"] == ROOM * 1000
    assert state["redemptions"] == ROOM


@pytest.mark.postgres
def test_a_budget_that_does_not_divide_grants_its_remainder_once(
    committing_engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, 20, budget_minor=3500)  # three full rewards and £5
    results = _race(
        committing_engine, clock, 20, _redeemer(scene, settings, clock, lambda i: scene.members[i])
    )
    wins, refusals = _tally(results)
    assert wins == 4
    assert refusals == Counter({(409, "limit-reached"): 16})
    state = _state(committing_engine, clock, scene.benefit_pk)
    assert (state["budget_remaining"], state["granted"]) == (0, 3500)


@pytest.mark.postgres
def test_one_code_scanned_at_ten_tills_at_once_redeems_once(
    committing_engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, 1)
    results = _race(
        committing_engine, clock, 10, _redeemer(scene, settings, clock, lambda _: scene.members[0])
    )
    wins, refusals = _tally(results)
    assert wins == 1
    assert refusals == Counter({(409, "conflict"): 9})
    assert _state(committing_engine, clock, scene.benefit_pk)["redemptions"] == 1
