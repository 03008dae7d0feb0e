"""Checkouts against the running server: `python -m bench.shop.checkout --rate 300 --seconds 20`.

Builds a shop in a PostgreSQL schema of its own (`bench_shop`): the demo partner with its 300-product
catalog (the Online Retail excerpt the demo ships) and plenty of stock, and `--customers`
customers, each with a funded deposit account. Starts the API server (uvicorn, `--workers`
processes) against it, and drives `POST /api/v1/shop/checkout` from a load generator in a second
process (`bench.loadgen`, an open loop at a fixed offered rate): each checkout a new
`Idempotency-Key`, a customer's bearer token, one or two products bought now, the shipping address
with consent. A checkout is the whole of it: stock reserved, the order written, the payment
authorised by the bank core (ledger hold), the order marked paid. Prints the offered and achieved
rates, latency percentiles and the answers' statuses, then checks the database: every paid order
has an authorised payment and no stock is below zero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import loadgen
from bench.shop import waits
from beyondbank import schema
from beyondbank.commerce import service as commerce
from beyondbank.commerce.catalog import service as catalog
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import issue_access_token
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.demo.money import SHOP
from beyondbank.demo.shop import CATALOG_FILE
from beyondbank.identity import service as identity
from beyondbank.payments import service as bank_core

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_shop"
URL = f"{POSTGRES}?options=-csearch_path%3D{SCHEMA}&application_name={waits.APPLICATION}"
PORT = 8766
ADDRESS = {
    "recipient": "A. Customer",
    "line1": "1 Harbour Street",
    "city": "London",
    "postcode": "E14 5AB",
    "country": "GB",
}


def prepare(customers: int, settings: Settings) -> tuple[str, list[str], list[str]]:
    """A fresh schema: the partner, its catalog with deep stock, funded customers. Returns the
    partner's id, the products' ids and the customers' bearer tokens."""
    admin = make_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    engine = make_engine(URL)
    schema.upgrade(engine)
    factory = make_session_factory(engine)
    clock = SystemClock()
    with UnitOfWork(factory, clock) as uow:
        partner = commerce.create_partner(uow, SYSTEM, SHOP)
    with UnitOfWork(factory, clock) as uow, CATALOG_FILE.open("rb") as feed:
        catalog.import_feed(uow, SYSTEM, partner, feed, "csv", source=CATALOG_FILE.name)
    with engine.begin() as conn:  # deep stock: the benchmark is about checkouts, not sell-outs
        conn.execute(text("UPDATE shop_products SET stock_on_hand = 1000000"))
        products = [r[0] for r in conn.execute(text("SELECT public_id FROM shop_products"))]
    tokens = []
    with UnitOfWork(factory, clock) as uow:
        for i in range(customers):
            customer = identity.register_customer(uow, f"BENCH-{i:06d}")
            bank_core.open_account(
                uow,
                SYSTEM,
                bank_core.OpenAccount(
                    customer_id=customer.public_id,
                    currency="GBP",
                    opening_balance_minor=100_000_000,
                ),
                commit=False,
            )
            tokens.append(
                issue_access_token(
                    settings.secret_key.get_secret_value(),
                    kind="customer",
                    subject=customer.public_id,
                    now=clock.now(),
                    ttl_seconds=3600,
                )
            )
        uow.commit()
    engine.dispose()
    return partner.public_id, products, tokens


def calls(partner: str, products: list[str], tokens: list[str], count: int) -> list[loadgen.Call]:
    rng = random.Random(7)
    return [
        loadgen.Call(
            "POST",
            "/api/v1/shop/checkout",
            json={
                "partner_id": partner,
                "shipping_address": ADDRESS,
                "share_address_with_partner": True,
                "items": [
                    {"product_id": p, "quantity": rng.randint(1, 3)}
                    for p in rng.sample(products, rng.choice((1, 1, 2)))
                ],
            },
            headers={
                "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                "Idempotency-Key": str(uuid.UUID(int=rng.getrandbits(128))),
            },
        )
        for i in range(count)
    ]


def status_of(status: int, body: bytes) -> str:
    """An order's status, or a problem's type."""
    if not body:
        return ""
    answer = json.loads(body)
    return str(answer.get("status", "") if status in (200, 201) else answer.get("type", ""))


def consistency() -> dict[str, int]:
    """What the database says after the run: orders by status, and the invariants."""
    engine = make_engine(URL)
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(text("SELECT status, count(*) FROM shop_orders GROUP BY status")).all()
        )
        unpaid = conn.execute(
            text(
                "SELECT count(*) FROM shop_orders o WHERE o.status = 'paid' AND NOT EXISTS "
                "(SELECT 1 FROM payments p WHERE p.public_id = o.payment_ref "
                "AND p.status = 'authorised' AND p.amount_minor = o.total_minor)"
            )
        ).scalar_one()
        negative = conn.execute(
            text(
                "SELECT count(*) FROM shop_products "
                "WHERE stock_on_hand - stock_reserved < 0 OR stock_reserved < 0"
            )
        ).scalar_one()
    engine.dispose()
    return {
        **{f"orders_{k}": int(v) for k, v in by_status.items()},
        "paid_without_payment": int(unpaid),
        "negative_stock": int(negative),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="checkouts per second offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument(
        "--warmup", type=int, default=600, help="checkouts first, at the offered rate, not counted"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--waits", action="store_true", help="sample the server's sessions' wait events"
    )
    args = parser.parse_args()

    settings = Settings(environment="demo", database_url=URL)
    partner, products, tokens = prepare(args.customers, settings)
    count = int(args.rate * args.seconds)
    batch = calls(partner, products, tokens, count + args.warmup)
    server = loadgen.serve(
        PORT, args.workers, {"BEYONDBANK_DATABASE_URL": URL, "BEYONDBANK_ENVIRONMENT": "demo"}
    )
    generator: dict[str, float] = {}
    try:
        # At the offered rate: the pool and its backends (their plans) as a running server has them.
        loadgen.drive(PORT, batch[: args.warmup], args.rate, status_of)
        sampler = waits.Waits(POSTGRES.replace("+psycopg", "")) if args.waits else None
        with sampler or contextlib.nullcontext():
            answers, elapsed = loadgen.drive(
                PORT, batch[args.warmup :], args.rate, status_of, stats=generator, server=server
            )
    finally:
        loadgen.stop(server)
    figures: dict[str, Any] = {
        **loadgen.figures(answers, elapsed, args.rate),
        "server_workers": args.workers,
        **generator,
        **{
            f"{name.removesuffix('_s')}_ms_each": round(seconds * 1000 / len(answers), 2)
            for name, seconds in generator.items()
        },
        **consistency(),
        **(sampler.figures() if sampler else {}),
    }
    for key, value in figures.items():
        print(f"{key:22} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
