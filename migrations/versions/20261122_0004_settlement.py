"""Commission contracts, co-funding pools, settlement periods, statements and payouts.

Contract versions, statements and settled items are history: the database refuses to update or
delete them.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import beyondbank.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settlement_payout_runs",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("execution_date", sa.Date(), nullable=False),
        sa.Column("debtor_name", sa.String(length=140), nullable=False),
        sa.Column("debtor_iban", sa.String(length=34), nullable=False),
        sa.Column("debtor_bic", sa.String(length=11), nullable=False),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_payout_runs")),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_payout_runs_public_id")),
    )
    op.create_table(
        "settlement_contracts",
        sa.Column(
            "party_kind",
            sa.Enum(
                "merchant",
                "partner",
                name="partykind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("party_ref", sa.String(length=40), nullable=False),
        sa.Column("party_name", sa.String(length=200), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "frequency",
            sa.Enum(
                "month",
                "week",
                "days",
                name="frequency",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "period_days", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "(frequency = 'days' AND period_days BETWEEN 1 AND 366) OR (frequency <> 'days' AND period_days IS NULL)",
            name=op.f("ck_settlement_contracts_period_days_for_days"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_settlement_contracts_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_contracts")),
        sa.UniqueConstraint(
            "party_kind",
            "party_ref",
            "currency",
            name=op.f("uq_settlement_contracts_party_kind_party_ref_currency"),
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_contracts_public_id")),
    )
    with op.batch_alter_table("settlement_contracts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_contracts_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_contracts_party_ref"), ["party_ref"], unique=False
        )

    op.create_table(
        "settlement_contract_versions",
        sa.Column(
            "contract_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column(
            "base_share_bps", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "category_overrides",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "sales_tiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "new_customer_fee_minor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "minimum_monthly_fee_minor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "pool_party_share_bps",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "base_share_bps BETWEEN 0 AND 10000",
            name=op.f("ck_settlement_contract_versions_base_share_range"),
        ),
        sa.CheckConstraint(
            "minimum_monthly_fee_minor >= 0",
            name=op.f("ck_settlement_contract_versions_minimum_fee_non_negative"),
        ),
        sa.CheckConstraint(
            "new_customer_fee_minor >= 0",
            name=op.f("ck_settlement_contract_versions_new_customer_fee_non_negative"),
        ),
        sa.CheckConstraint(
            "pool_party_share_bps BETWEEN 0 AND 10000",
            name=op.f("ck_settlement_contract_versions_pool_share_range"),
        ),
        sa.CheckConstraint(
            "version >= 1", name=op.f("ck_settlement_contract_versions_version_positive")
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["settlement_contracts.id"],
            name=op.f("fk_settlement_contract_versions_contract_id_settlement_contracts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_contract_versions")),
        sa.UniqueConstraint(
            "contract_id",
            "effective_from",
            name=op.f("uq_settlement_contract_versions_contract_id_effective_from"),
        ),
        sa.UniqueConstraint(
            "contract_id",
            "version",
            name=op.f("uq_settlement_contract_versions_contract_id_version"),
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_contract_versions_public_id")),
    )
    with op.batch_alter_table("settlement_contract_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_contract_versions_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "settlement_pools",
        sa.Column(
            "contract_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["settlement_contracts.id"],
            name=op.f("fk_settlement_pools_contract_id_settlement_contracts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_pools")),
        sa.UniqueConstraint(
            "contract_id", "name", name=op.f("uq_settlement_pools_contract_id_name")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_pools_public_id")),
    )
    with op.batch_alter_table("settlement_pools", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_pools_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "settlement_periods",
        sa.Column(
            "contract_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("start_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "closing",
                "closed",
                name="periodstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("closing_token", sa.String(length=64), nullable=True),
        sa.Column(
            "closing_started_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("closing_by", sa.String(length=40), nullable=True),
        sa.Column("closed_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=40), nullable=True),
        sa.Column(
            "version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("net_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL AND net_minor IS NOT NULL)",
            name=op.f("ck_settlement_periods_closed_has_result"),
        ),
        sa.CheckConstraint(
            "start_at < end_at", name=op.f("ck_settlement_periods_instants_ordered")
        ),
        sa.CheckConstraint("starts_on < ends_on", name=op.f("ck_settlement_periods_dates_ordered")),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["settlement_contracts.id"],
            name=op.f("fk_settlement_periods_contract_id_settlement_contracts"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["settlement_contract_versions.id"],
            name=op.f("fk_settlement_periods_version_id_settlement_contract_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_periods")),
        sa.UniqueConstraint(
            "contract_id", "sequence", name=op.f("uq_settlement_periods_contract_id_sequence")
        ),
        sa.UniqueConstraint(
            "contract_id", "starts_on", name=op.f("uq_settlement_periods_contract_id_starts_on")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_periods_public_id")),
    )
    with op.batch_alter_table("settlement_periods", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_periods_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            "ix_settlement_periods_status_end", ["status", "end_at"], unique=False
        )

    op.create_table(
        "settlement_payout_lines",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "period_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "paid",
                "exception",
                name="payoutlinestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "party_kind",
            sa.Enum(
                "merchant",
                "partner",
                name="partykind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("party_ref", sa.String(length=40), nullable=False),
        sa.Column("creditor_name", sa.String(length=140), nullable=False),
        sa.Column("creditor_iban", sa.String(length=34), nullable=True),
        sa.Column("creditor_bic", sa.String(length=11), nullable=True),
        sa.Column(
            "amount_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("transaction_ref", sa.String(length=40), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "status <> 'paid' OR creditor_iban IS NOT NULL",
            name=op.f("ck_settlement_payout_lines_paid_has_account"),
        ),
        sa.CheckConstraint(
            "amount_minor > 0", name=op.f("ck_settlement_payout_lines_amount_positive")
        ),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["settlement_periods.id"],
            name=op.f("fk_settlement_payout_lines_period_id_settlement_periods"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["settlement_payout_runs.id"],
            name=op.f("fk_settlement_payout_lines_run_id_settlement_payout_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_payout_lines")),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_payout_lines_public_id")),
    )
    with op.batch_alter_table("settlement_payout_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_payout_lines_period_id"), ["period_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_payout_lines_run_id"), ["run_id"], unique=False
        )
        batch_op.create_index(
            "uq_settlement_payout_lines_period_paid",
            ["period_id"],
            unique=True,
            sqlite_where=sa.text("status = 'paid'"),
            postgresql_where=sa.text("status = 'paid'"),
        )

    op.create_table(
        "settlement_statements",
        sa.Column(
            "period_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("transaction_ref", sa.String(length=40), nullable=True),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["settlement_periods.id"],
            name=op.f("fk_settlement_statements_period_id_settlement_periods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_statements")),
        sa.UniqueConstraint("period_id", name=op.f("uq_settlement_statements_period_id")),
        sa.UniqueConstraint("public_id", name=op.f("uq_settlement_statements_public_id")),
    )

    op.create_table(
        "settlement_items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "period_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["settlement_periods.id"],
            name=op.f("fk_settlement_items_period_id_settlement_periods"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_settlement_items_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_items")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_settlement_items_transaction_id")),
    )
    with op.batch_alter_table("settlement_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_items_period_id"), ["period_id"], unique=False
        )

    _create_immutability_triggers()


def downgrade() -> None:
    _drop_immutability_triggers()
    with op.batch_alter_table("settlement_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_items_period_id"))

    op.drop_table("settlement_items")
    op.drop_table("settlement_statements")
    with op.batch_alter_table("settlement_payout_lines", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_settlement_payout_lines_period_paid",
            sqlite_where=sa.text("status = 'paid'"),
            postgresql_where=sa.text("status = 'paid'"),
        )
        batch_op.drop_index(batch_op.f("ix_settlement_payout_lines_run_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_payout_lines_period_id"))

    op.drop_table("settlement_payout_lines")
    with op.batch_alter_table("settlement_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_periods_status_end")
        batch_op.drop_index(batch_op.f("ix_settlement_periods_contract_id"))

    op.drop_table("settlement_periods")
    with op.batch_alter_table("settlement_pools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_pools_contract_id"))

    op.drop_table("settlement_pools")
    with op.batch_alter_table("settlement_contract_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_contract_versions_contract_id"))

    op.drop_table("settlement_contract_versions")
    with op.batch_alter_table("settlement_contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_contracts_party_ref"))
        batch_op.drop_index(batch_op.f("ix_settlement_contracts_merchant_id"))

    op.drop_table("settlement_contracts")
    op.drop_table("settlement_payout_runs")


# A contract version and a stored statement never change: a new version or a new period does.
_IMMUTABLE = {
    "settlement_contract_versions": "contract versions are immutable: add a new version",
    "settlement_statements": "settlement statements are immutable once a period is closed",
    "settlement_items": "settled items are immutable: a transaction is settled once",
}


def _create_immutability_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, message in _IMMUTABLE.items():
        if postgres:
            op.execute(
                f"CREATE FUNCTION {table}_refuse_change() RETURNS trigger LANGUAGE plpgsql "
                f"AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_refuse_change()"
            )
        else:
            for operation in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation} BEFORE {operation.upper()} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )


def _drop_immutability_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _IMMUTABLE:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_refuse_change()")
        else:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
