"""The bank core's authorisations alone, from many threads, all to the shop's partner:
`python -m bench.shop.authorise --threads 16 --count 3000` against the benchmark's schema
(`bench_shop`, built by `python -m bench.shop.checkout` once; the partner's payable account is
opened by its first checkout). Every authorisation credits that one payable ledger account, so
this measures how the bank core copes with one hot account under concurrency: authorisations a
second, latency, and what the sessions waited on (`waits`), with the checkout's HTTP, shop
and load generator out of the way."""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from sqlalchemy import text

from bench.loadgen import percentile
from bench.shop import waits
from bench.shop.checkout import POSTGRES, URL
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import Settings
from beyondbank.core.uow import make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import AuthoriseRequest, PayeeKind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()

    settings = Settings(environment="demo", database_url=URL)
    engine = make_engine(URL, pool_size=args.threads, max_overflow=args.threads)
    gateway = BankCoreGateway(
        make_session_factory(engine), SystemClock(), timezone=settings.default_timezone
    )
    with engine.connect() as conn:
        partner = conn.execute(
            text(
                "SELECT DISTINCT p.public_id FROM partners p JOIN shop_products s "
                "ON s.partner_id = p.id"
            )
        ).scalar_one()
        accounts = [r[0] for r in conn.execute(text("SELECT public_id FROM deposit_accounts"))]

    def request(i: int) -> AuthoriseRequest:
        return AuthoriseRequest(
            account_id=accounts[i % len(accounts)],
            amount_minor=100 + i % 7,
            currency="GBP",
            payee_kind=PayeeKind.PARTNER,
            payee_id=partner,
            reference=f"bench-{i}",
        )

    latencies: list[float] = []
    approved = [0]
    counter = iter(range(args.count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            began = time.perf_counter()
            result = gateway.authorise(request(i), key=str(uuid.uuid4()))
            with lock:
                latencies.append(time.perf_counter() - began)
                approved[0] += result.approved

    for i in range(50):  # warm-up: connections, compiled statements
        gateway.authorise(request(args.count + i), key=str(uuid.uuid4()))
    threads = [threading.Thread(target=work) for _ in range(args.threads)]
    sampler = waits.Waits(POSTGRES.replace("+psycopg", ""))
    with sampler:
        began, cpu = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    ms = [s * 1000 for s in latencies]
    figures = {
        "authorisations": args.count,
        "approved": approved[0],
        "threads": args.threads,
        "per_second": round(args.count / elapsed, 1),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "client_cpu_ms_each": round(cpu * 1000 / args.count, 2),
        **sampler.figures(top=6),
    }
    for key, value in figures.items():
        print(f"{key:24} {value}")
    engine.dispose()


if __name__ == "__main__":
    main()
