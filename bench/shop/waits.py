"""What the benchmark's database sessions are doing while the load runs: `pg_stat_activity`
sampled every few milliseconds from a thread of the driver, counted by state, wait event and
the statement's first words (which function of the checkout), so that a lock queue (a hot row
held to its commit), the WAL flush or an idle pool shows as the number of sessions in it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType

import psycopg

# The sessions of the benchmark's server carry this `application_name` (see `checkout.URL`).
APPLICATION = "bench_shop"
_SAMPLE = """
SELECT state, coalesce(wait_event_type, '-'), coalesce(wait_event, '-'), left(query, 32)
FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()
"""


class Waits:
    """A sampler of the benchmark's sessions, on while inside `with`; `figures()` then gives
    the mean number of sessions in each (state, wait) and (state, wait, statement) per sample."""

    def __init__(self, dsn: str, every_seconds: float = 0.01) -> None:
        self.dsn = dsn
        self.every = every_seconds
        self.samples = 0
        self.by_wait: Counter[str] = Counter()
        self.by_statement: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Waits:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(_SAMPLE, (APPLICATION,)).fetchall()
                self.samples += 1
                for state, wait_type, wait, statement in rows:
                    where = f"{state} {wait_type}:{wait}"
                    self.by_wait[where] += 1
                    if state == "active":
                        self.by_statement[f"{where} {' '.join(statement.split())}"] += 1
                time.sleep(self.every)

    def figures(self, top: int = 12) -> dict[str, float]:
        """Sessions per sample in each state and wait, then the busiest active statements."""
        n = max(self.samples, 1)
        out = {"wait_samples": float(self.samples)}
        for where, count in self.by_wait.most_common():
            out[f"sessions {where}"] = round(count / n, 2)
        for where, count in self.by_statement.most_common(top):
            out[f"active {where}"] = round(count / n, 2)
        return out
