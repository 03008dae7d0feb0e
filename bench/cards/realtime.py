"""The real-time path under load: `python -m bench.cards.realtime --rate 500 --seconds 20`.

Builds the demo programme in a PostgreSQL schema of its own (`bench_cards`), starts the API
server (uvicorn, `--workers` processes) against it, and drives `POST /api/v1/cards/events` from a
load generator in a second process: an open loop that sends events at a fixed rate whatever the
answers' speed (asyncio, plain HTTP/1.1 on keep-alive connections), so a slow server shows as
latency, not as a lower offered rate; latency counts from each event's slot. The events are the
synthetic feed's purchases for the programme (members at alliance merchants, other cards,
unregistered terminals with noisy descriptors, …), each a new txn_id. Prints the offered and achieved rates, the latency percentiles and the answers' statuses.

The workers share a listening socket made as a TCP socket (`IPPROTO_TCP`, `bench.loadgen.run_server`): `uvicorn
--workers N` binds one with protocol 0, and asyncio then leaves Nagle's algorithm on for every
connection it accepts (it sets TCP_NODELAY only on sockets that say they are TCP), so each answer
written in two parts (headers, body) waits for the client's delayed ACK: about 40 ms a request on
a keep-alive connection. `--plain-uvicorn` measures with the uvicorn command line as it is. The
server launcher and the generator are `bench.loadgen`'s, as the shop's checkout bench uses them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from sqlalchemy import text

from bench import loadgen
from beyondbank import schema
from beyondbank.cards import frames, generate, service
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.demo.setup import populate
from beyondbank.identity import service as identity

POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_cards"
URL = f"{POSTGRES}?options=-csearch_path%3D{SCHEMA}"
PORT = 8765


def prepare(members: int) -> tuple[str, str]:
    """A fresh schema with the demo programme and a card-switch client; its credentials."""
    admin = make_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    engine = make_engine(URL)
    schema.upgrade(engine)
    settings = Settings(environment="demo", database_url=URL)
    populate(engine, settings=settings, clock=SystemClock(), members=members)
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        client, secret = identity.create_client(
            uow, SYSTEM, name="Card switch (bench)", scopes=["cards:ingest"], merchant_id=None
        )
    engine.dispose()
    return client.client_id, secret


def events(count: int) -> list[dict[str, Any]]:
    """Purchases from the synthetic feed for the programme, as JSON events, newest first."""
    engine = make_engine(URL)
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        world = service.feed_world(uow, "GBP")
    engine.dispose()
    start = datetime.now(UTC) - timedelta(days=1)
    rows = pl.concat(
        generate.generate_feed(
            world, transactions=int(count * 1.1) + 100, seed=9, start=start, days=1, bad_share=0.0
        )
    )
    purchases = rows.filter(pl.col("type") == frames.PURCHASE).unique("txn_id").head(count)
    return [
        {**row, "amount_minor": int(row["amount_minor"]), "original_txn_id": None}
        for row in purchases.iter_rows(named=True)
    ]


def outcome(status: int, body: bytes) -> str:
    """An answered event's outcome (`rewarded`, `no_reward`, …); nothing for a refusal."""
    return str(json.loads(body).get("status", "")) if status == 200 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--members", type=int, default=1_000, help="demo members")
    parser.add_argument(
        "--warmup", type=int, default=1000, help="events first, at the offered rate, not counted"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--plain-uvicorn", action="store_true", help="serve with `uvicorn --workers` as it is"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    client_id, secret = prepare(args.members)
    count = int(args.rate * args.seconds)
    batch = events(count + args.warmup)
    env = {"BEYONDBANK_DATABASE_URL": URL, "BEYONDBANK_ENVIRONMENT": "demo"}
    server = loadgen.serve(PORT, args.workers, env, plain=args.plain_uvicorn)
    try:
        token = httpx.post(
            f"http://127.0.0.1:{PORT}/api/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        ).json()["access_token"]
        calls = [
            loadgen.Call(
                "POST", "/api/v1/cards/events", event, {"Authorization": f"Bearer {token}"}
            )
            for event in batch
        ]
        # At the offered rate: the pool and its backends (their plans) as a running server has them.
        loadgen.drive(PORT, calls[: args.warmup], args.rate, outcome)
        stats: dict[str, float] = {}
        answers, elapsed = loadgen.drive(
            PORT, calls[args.warmup :], args.rate, outcome, stats, server
        )
    finally:
        loadgen.stop(server)
    measured = loadgen.figures(answers, elapsed, args.rate)
    figures = {
        "offered_rate": args.rate,
        "events": len(answers),
        "achieved_rate": measured["achieved_rate"],
        "server_workers": args.workers,
        **{k: measured[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")},
        # The server's processes' CPU time per event (the database's is not counted).
        "server_cpu_ms_per_event": round(stats["server_cpu_s"] * 1000 / len(answers), 2),
        "generator_cpu_ms_per_event": round(stats["generator_cpu_s"] * 1000 / len(answers), 2),
        # PostgreSQL's processes over the same time, whoever they worked for (other work on the
        # machine counts too): the third user of the two cores.
        "database_cpu_ms_per_event": round(stats["database_cpu_s"] * 1000 / len(answers), 2),
        # Both cores' busy time, the kernel's included: everything the events cost the machine.
        "machine_cpu_ms_per_event": round(stats["machine_cpu_s"] * 1000 / len(answers), 2),
        "http": measured["http"],
        "outcomes": measured["outcomes"],
        "cpu_count": os.cpu_count(),
        # The 1-minute load average when the bench started and when it measured its last
        # answer: on a shared machine it is part of every figure.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        # uvicorn uses uvloop and httptools when they are installed (the lock has them).
        "event_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http_parser": "httptools" if importlib.util.find_spec("httptools") else "h11",
    }
    for key, value in figures.items():
        print(f"{key:16} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
