"""The real-time run's counters spread over rows: `card_run_tallies`, one row per run and database
connection, which the real-time path's batches add to on PostgreSQL instead of the run's row
(every batch of every server process updated that one row and held its lock to the end of its
commit, so batches queued there). A run's counters are its row plus the sum of its tallies.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTERS = ("rows_read", "accepted", "matched", "unresolved", "rewards", "clawbacks", "posted")


def upgrade() -> None:
    op.create_table(
        "card_run_tallies",
        sa.Column("run_id", _INT, nullable=False),
        sa.Column("slot", _INT, autoincrement=False, nullable=False),
        *(sa.Column(name, _INT, nullable=False) for name in COUNTERS),
        sa.ForeignKeyConstraint(
            ["run_id"], ["card_runs.id"], name=op.f("fk_card_run_tallies_run_id_card_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "slot", name=op.f("pk_card_run_tallies")),
    )


def downgrade() -> None:
    op.drop_table("card_run_tallies")
