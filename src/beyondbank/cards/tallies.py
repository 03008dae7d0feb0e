"""The real-time run's counters spread over tally rows (`card_run_tallies`, one per run and
database connection, which a batch adds to by its connection's backend pid: `realtime_writes`),
and a run's counters as they stand (its row plus its tallies). Separate from `realtime` so that any reader of runs (the service, the API, the console,
the CLI) can add the tallies without importing the real-time path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm.attributes import set_committed_value

from beyondbank.cards.models import CardRun, CardRunTally
from beyondbank.core.uow import UnitOfWork

_TALLIES = cast(Table, CardRunTally.__table__)
COUNTERS = ("rows_read", "accepted", "matched", "unresolved", "rewards", "clawbacks", "posted")


def with_tallies(uow: UnitOfWork, runs: Sequence[CardRun]) -> Sequence[CardRun]:
    """The runs with their counters as they stand: each run's row as stored plus its tallies,
    set on the loaded objects as if read so (the session does not see them as changed, and
    never writes them back). Both are read afresh, so adding them again changes nothing."""
    by_id = {run.id: run for run in runs}
    if not by_id:
        return runs
    ids = sorted(by_id)
    runs_table = cast(Table, CardRun.__table__)
    stored = {
        row[0]: list(row[1:])
        for row in uow.session.execute(
            select(runs_table.c.id, *(runs_table.c[name] for name in COUNTERS)).where(
                runs_table.c.id.in_(ids)
            )
        )
    }
    sums = {
        row[0]: row[1:]
        for row in uow.session.execute(
            select(_TALLIES.c.run_id, *(func.sum(_TALLIES.c[name]) for name in COUNTERS))
            .where(_TALLIES.c.run_id.in_(ids))
            .group_by(_TALLIES.c.run_id)
        )
    }
    for run_id, run in by_id.items():
        added = sums.get(run_id, (0,) * len(COUNTERS))
        for name, value, n in zip(COUNTERS, stored[run_id], added, strict=True):
            set_committed_value(run, name, int(value) + int(n or 0))
    return runs
