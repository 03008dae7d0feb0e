"""One checkout at a time, in-process, against the benchmark's schema (`bench_shop`, built by
`python -m bench.shop.checkout` once): what a checkout costs in SQL statements, commits, time
waiting on PostgreSQL and time in Python. `python -m bench.shop.profile --count 300 [--cprofile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
import uuid
from typing import Any

from sqlalchemy import event, text

from bench.shop.checkout import ADDRESS, URL
from beyondbank.commerce.orders import service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import issue_access_token
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.identity import service as identity
from beyondbank.payments.bankcore import BankCoreGateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime")
    parser.add_argument("--sql", action="store_true", help="print one checkout's statements")
    args = parser.parse_args()

    settings = Settings(environment="demo", database_url=URL)
    engine = make_engine(URL)
    factory = make_session_factory(engine)
    clock = SystemClock()
    gateway = BankCoreGateway(factory, clock, timezone=settings.default_timezone)
    with engine.connect() as conn:
        partner = conn.execute(
            text(
                "SELECT DISTINCT p.public_id FROM partners p "
                "JOIN shop_products s ON s.partner_id = p.id"
            )
        ).scalar_one()
        products = [r[0] for r in conn.execute(text("SELECT public_id FROM shop_products"))]
        customers = [
            r[0]
            for r in conn.execute(text("SELECT public_id FROM customers ORDER BY id LIMIT 200"))
        ]
    tokens = [
        issue_access_token(
            settings.secret_key.get_secret_value(),
            kind="customer",
            subject=c,
            now=clock.now(),
            ttl_seconds=3600,
        )
        for c in customers
    ]
    counters = {"statements": 0, "commits": 0, "db_seconds": 0.0}
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info["t0"] = time.perf_counter()
        counters["statements"] += 1
        statements.append(statement.split("\n")[0][:110])

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *rest: Any) -> None:
        counters["db_seconds"] += time.perf_counter() - conn.info.pop("t0")

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        counters["commits"] += 1

    rng = random.Random(11)

    def one(i: int) -> None:
        token = tokens[i % len(tokens)]
        items = [Wanted(p, rng.randint(1, 3)) for p in rng.sample(products, rng.choice((1, 1, 2)))]
        data = service.CheckoutIn(
            partner_id=partner,
            shipping_address=ADDRESS,
            share_address_with_partner=True,
            items=items,
        )
        with UnitOfWork(factory, clock) as uow:
            with uow.fresh() as own:
                actor = identity.principal_from_access_token(own, settings, token)
            service.checkout_order(
                uow,
                gateway,
                actor,
                data,
                key=str(uuid.uuid4()),
                fingerprint=fingerprint("POST", "/shop/checkout", {"i": i}),
            )

    for i in range(30):  # warm-up: caches, compiled statements, connections
        one(i)
    for key in counters:
        counters[key] = 0
    statements.clear()
    # CPU time, not wall time: what the checkout costs the machine, not what it waits for.
    profiler = cProfile.Profile(time.process_time) if args.cprofile else None
    began, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for i in range(args.count):
        one(i)
    if profiler:
        profiler.disable()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    n = args.count
    print(f"checkouts            {n}")
    print(f"ms per checkout      {elapsed / n * 1000:.2f}")
    print(f"statements each      {counters['statements'] / n:.1f}")
    print(f"commits each         {counters['commits'] / n:.1f}")
    print(f"ms in the database   {counters['db_seconds'] / n * 1000:.2f}")
    print(f"ms in Python         {(elapsed - counters['db_seconds']) / n * 1000:.2f}")
    print(f"ms of CPU (client)   {cpu / n * 1000:.2f}")
    if args.sql:
        per = len(statements) // n
        for s in statements[-per:]:
            print("   ", s)
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)
    engine.dispose()


if __name__ == "__main__":
    main()
