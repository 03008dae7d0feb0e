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
a keep-alive connection. `--plain-uvicorn` measures with the uvicorn command line as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from sqlalchemy import text

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


def serve(workers: int, *, plain: bool = False) -> subprocess.Popen[bytes]:
    """The API server in its own process group: `workers` uvicorn processes on one socket."""
    env = {**os.environ, "BEYONDBANK_DATABASE_URL": URL, "BEYONDBANK_ENVIRONMENT": "demo"}
    if plain:
        uvicorn = Path(sys.executable).with_name("uvicorn")
        command = [
            str(uvicorn),
            "beyondbank.api:create_app",
            "--factory",
            "--port",
            str(PORT),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--port",
            str(PORT),
            "--workers",
            str(workers),
        ]
    server = subprocess.Popen(command, env=env)  # noqa: S603 - our own server, our own arguments
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.send_signal(signal.SIGTERM)
    raise RuntimeError("the server did not start")


def load(
    token: str, batch: list[dict[str, Any]], rate: float, out: multiprocessing.Queue[Any]
) -> None:
    """The load generator (its own process): send each event at its slot, record latencies."""
    started, cpu = time.perf_counter(), time.process_time()
    results = asyncio.run(_send_all(token, batch, rate))
    out.put((results, time.perf_counter() - started, time.process_time() - cpu))


# Connections the generator keeps open at most; more requests than this in flight wait for one,
# and that wait counts in their latency (measured from the request's slot, not from its send).
CONNECTIONS = 256


async def _send_all(
    token: str, batch: list[dict[str, Any]], rate: float
) -> list[tuple[float, int, str]]:
    """An open loop over asyncio streams speaking plain HTTP/1.1 on keep-alive connections: a
    few tens of microseconds of the generator's CPU a request (a thread pool of httpx clients
    spent 1–5 ms, as much as the server it measured, on the same two cores)."""
    loop = asyncio.get_running_loop()
    bodies = [json.dumps(event).encode() for event in batch]
    head = (
        "POST /api/v1/cards/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    )
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    room = asyncio.Semaphore(CONNECTIONS)

    async def send(body: bytes, slot: float) -> tuple[float, int, str]:
        async with room:
            for attempt in range(2):
                try:
                    fresh = attempt or not idle
                    reader, writer = await _connect() if fresh else idle.pop()
                    writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    status, answer = await asyncio.wait_for(_response(reader), timeout=30)
                    break
                except ConnectionError:
                    # The server closed an idle keep-alive connection: again on a new one.
                    if attempt:
                        return loop.time() - slot, 0, "ConnectionError"
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    return loop.time() - slot, 0, type(exc).__name__
            idle.append((reader, writer))
        outcome = json.loads(answer).get("status", "") if status == 200 else ""
        return loop.time() - slot, status, outcome

    started = loop.time()
    tasks = []
    for i, body in enumerate(bodies):
        slot = started + i / rate
        pause = slot - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(send(body, slot)))
    return list(await asyncio.gather(*tasks))


async def _connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length (as uvicorn sends JSON)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    status = int(line.split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def cpu_seconds(root: int) -> float:
    """User and system CPU seconds of a process and its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(used.get(pid, 0.0) for pid in tree)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--members", type=int, default=1_000, help="demo members")
    parser.add_argument("--warmup", type=int, default=200, help="events sent first, not counted")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--plain-uvicorn", action="store_true", help="serve with `uvicorn --workers` as it is"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    client_id, secret = prepare(args.members)
    count = int(args.rate * args.seconds)
    batch = events(count + args.warmup)
    server = serve(args.workers, plain=args.plain_uvicorn)
    try:
        token = httpx.post(
            f"http://127.0.0.1:{PORT}/api/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        ).json()["access_token"]
        context = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[Any] = context.Queue()
        for name, part, rate in (
            ("warm-up", batch[: args.warmup], min(args.rate, 100.0)),
            ("measured", batch[args.warmup :], args.rate),
        ):
            cpu_before = cpu_seconds(server.pid)
            generator = context.Process(target=load, args=(token, part, rate, queue))
            generator.start()
            results, elapsed, generator_cpu = queue.get()
            generator.join()
            cpu = cpu_seconds(server.pid) - cpu_before
            if name == "warm-up":
                continue
            latencies = [r[0] * 1000 for r in results]
            figures = {
                "offered_rate": args.rate,
                "events": len(results),
                "achieved_rate": round(len(results) / elapsed, 1),
                "server_workers": args.workers,
                "p50_ms": round(percentile(latencies, 0.50), 2),
                "p95_ms": round(percentile(latencies, 0.95), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2),
                "max_ms": round(max(latencies), 2),
                "mean_ms": round(statistics.fmean(latencies), 2),
                # The server's processes' CPU time per event (the database's is not counted).
                "server_cpu_ms_per_event": round(cpu * 1000 / len(results), 2),
                "generator_cpu_ms_per_event": round(generator_cpu * 1000 / len(results), 2),
                "http": dict(Counter(str(r[1]) for r in results)),
                "outcomes": dict(Counter(r[2] for r in results if r[2])),
                "cpu_count": os.cpu_count(),
                # The 1-minute load average when the bench started and when it measured its
                # last answer: on a shared machine it is part of every figure.
                "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                # uvicorn uses uvloop and httptools when they are installed (the lock has them).
                "event_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
                "http_parser": "httptools" if importlib.util.find_spec("httptools") else "h11",
            }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    for key, value in figures.items():
        print(f"{key:16} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
