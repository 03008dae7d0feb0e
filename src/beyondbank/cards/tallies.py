"""The real-time run's counters spread over tally rows (`card_run_tallies`, one per run and
database connection): what a batch adds, and a run's counters as they stand (its row plus its
tallies). Separate from `realtime` so that any reader of runs (the service, the API, the console,
the CLI) can add the tallies without importing the real-time path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm.attributes import set_committed_value

from beyondbank.cards.models import CardRun, CardRunTally
from beyondbank.core.uow import UnitOfWork

_TALLIES = cast(Table, CardRunTally.__table__)
COUNTERS = ("rows_read", "accepted", "matched", "unresolved", "rewards", "clawbacks", "posted")


def _add() -> Any:
    """A batch's counts (parameters `run_id` and `COUNTERS`) added to its connection's tally row
    on PostgreSQL: the backend's pid is the slot, so no two connections open at once share one
    and concurrent batches never wait for each other here."""
    stmt = postgresql.insert(_TALLIES).values(
        run_id=bindparam("run_id"),
        slot=func.pg_backend_pid(),
        **{name: bindparam(name) for name in COUNTERS},
    )
    return stmt.on_conflict_do_update(
        index_elements=[_TALLIES.c.run_id, _TALLIES.c.slot],
        set_={name: _TALLIES.c[name] + stmt.excluded[name] for name in COUNTERS},
    )


ADD = _add()


def with_tallies(uow: UnitOfWork, runs: Sequence[CardRun]) -> Sequence[CardRun]:
    """The runs with their counters as they stand: each run's row plus its tallies, set on the
    loaded objects as if read so (the session does not see them as changed, and never writes
    them back)."""
    by_id = {run.id: run for run in runs}
    if not by_id:
        return runs
    totals = uow.session.execute(
        select(_TALLIES.c.run_id, *(func.sum(_TALLIES.c[name]) for name in COUNTERS))
        .where(_TALLIES.c.run_id.in_(sorted(by_id)))
        .group_by(_TALLIES.c.run_id)
    )
    for run_id, *sums in totals:
        run = by_id[run_id]
        for name, n in zip(COUNTERS, sums, strict=True):
            set_committed_value(run, name, getattr(run, name) + int(n))
    return runs
