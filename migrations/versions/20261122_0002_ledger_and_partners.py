"""The double-entry ledger (immutable postings, enforced by triggers) and partner organisations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:24:44.055220
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import beyondbank.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("code", sa.String(length=160), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "owner_kind",
            sa.Enum(
                "bank",
                "merchant",
                "partner",
                "member",
                "pool",
                name="ownerkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("owner_ref", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=60), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "asset",
                "liability",
                "revenue",
                "expense",
                name="accounttype",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "closed",
                name="accountstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "floor_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "debits_posted", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "credits_posted", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "debits_pending", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "credits_pending", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("opened_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "floor_minor IS NULL OR CASE WHEN type IN ('asset', 'expense') THEN debits_posted - credits_posted - credits_pending ELSE credits_posted - debits_posted - debits_pending END >= floor_minor",
            name=op.f("ck_ledger_accounts_floor"),
        ),
        sa.CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
            name=op.f("ck_ledger_accounts_totals_non_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
        sa.UniqueConstraint("id", "currency", name="uq_ledger_accounts_id_currency"),
        sa.UniqueConstraint("public_id", name=op.f("uq_ledger_accounts_public_id")),
    )
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_accounts_owner", ["owner_kind", "owner_ref"], unique=False)

    op.create_table(
        "ledger_transactions",
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "posted",
                "pending",
                "captured",
                "voided",
                name="transactionstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("counterparty_ref", sa.String(length=40), nullable=True),
        sa.Column("member_ref", sa.String(length=40), nullable=True),
        sa.Column("category", sa.String(length=60), nullable=True),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column(
            "corrects_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "resolves_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("effective_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("resolved_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "resolves_id IS NULL OR status = 'posted'",
            name=op.f("ck_ledger_transactions_only_posted_resolves_a_hold"),
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_transactions_corrects_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["resolves_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_transactions_resolves_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
        sa.UniqueConstraint("public_id", name=op.f("uq_ledger_transactions_public_id")),
        sa.UniqueConstraint("resolves_id", name=op.f("uq_ledger_transactions_resolves_id")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_transactions_corrects_id"), ["corrects_id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transactions_counterparty",
            ["counterparty_ref", "effective_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_ledger_transactions_kind_time", ["kind", "effective_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_transactions_member_ref"), ["member_ref"], unique=False
        )
        batch_op.create_index("ix_ledger_transactions_reference", ["reference"], unique=False)

    op.create_table(
        "partners",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "suspended",
                "terminated",
                name="partnerstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("settlement_iban", sa.String(length=34), nullable=True),
        sa.Column("settlement_bic", sa.String(length=11), nullable=True),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("public_id", name=op.f("uq_partners_public_id")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "amount_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("effective_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_ledger_postings_non_zero")),
        sa.ForeignKeyConstraint(
            ["account_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.currency"],
            name="fk_ledger_postings_account_currency",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_postings_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_postings_account_time", ["account_id", "effective_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_postings_transaction_id"), ["transaction_id"], unique=False
        )

    _create_immutability_triggers()


def downgrade() -> None:
    _drop_immutability_triggers()
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_postings_transaction_id"))
        batch_op.drop_index("ix_ledger_postings_account_time")

    op.drop_table("ledger_postings")
    op.drop_table("partners")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transactions_reference")
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_member_ref"))
        batch_op.drop_index("ix_ledger_transactions_kind_time")
        batch_op.drop_index("ix_ledger_transactions_counterparty")
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_corrects_id"))

    op.drop_table("ledger_transactions")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_accounts_owner")

    op.drop_table("ledger_accounts")


# Postings never change and a transaction changes only while it is a pending hold (its status);
# the database refuses anything else, whatever code or person issues it.
_PG_FUNCTIONS = {
    "ledger_refuse_posting_change": "RAISE EXCEPTION 'ledger postings are immutable: post a correction';",
    "ledger_refuse_transaction_change": (
        "IF TG_OP = 'DELETE' OR OLD.status <> 'pending' OR NEW.status = 'pending' "
        "OR NEW.fingerprint <> OLD.fingerprint OR NEW.idempotency_key <> OLD.idempotency_key "
        "OR NEW.effective_at <> OLD.effective_at THEN "
        "RAISE EXCEPTION 'ledger transactions are immutable once posted: post a correction'; "
        "END IF; RETURN NEW;"
    ),
}
_PG_TRIGGERS = {
    "ledger_postings_immutable": ("ledger_postings", "ledger_refuse_posting_change"),
    "ledger_transactions_immutable": ("ledger_transactions", "ledger_refuse_transaction_change"),
}
_SQLITE_TRIGGERS = {
    "ledger_postings_no_update": "BEFORE UPDATE ON ledger_postings BEGIN "
    "SELECT RAISE(ABORT, 'ledger postings are immutable: post a correction'); END",
    "ledger_postings_no_delete": "BEFORE DELETE ON ledger_postings BEGIN "
    "SELECT RAISE(ABORT, 'ledger postings are immutable: post a correction'); END",
    "ledger_transactions_no_update": "BEFORE UPDATE ON ledger_transactions "
    "WHEN OLD.status <> 'pending' OR NEW.status = 'pending' "
    "OR NEW.fingerprint <> OLD.fingerprint OR NEW.idempotency_key <> OLD.idempotency_key "
    "OR NEW.effective_at <> OLD.effective_at BEGIN "
    "SELECT RAISE(ABORT, 'ledger transactions are immutable once posted: post a correction'); END",
    "ledger_transactions_no_delete": "BEFORE DELETE ON ledger_transactions BEGIN "
    "SELECT RAISE(ABORT, 'ledger transactions are immutable: post a correction'); END",
}


def _create_immutability_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, body in _PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
            )
        for trigger, (table, function) in _PG_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
    else:
        for trigger, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {trigger} {body}")


def _drop_immutability_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, (table, _function) in _PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for name in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
