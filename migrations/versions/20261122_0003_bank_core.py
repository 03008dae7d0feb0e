"""The bank core behind the payment gateway: deposit accounts, payments, their operations.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import beyondbank.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deposit_accounts",
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "blocked",
                "closed",
                name="depositstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column(
            "overdraft_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "per_payment_limit_minor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "daily_limit_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "ledger_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("opened_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "account_number > 0", name=op.f("ck_deposit_accounts_account_number_positive")
        ),
        sa.CheckConstraint(
            "daily_limit_minor IS NULL OR daily_limit_minor > 0",
            name=op.f("ck_deposit_accounts_daily_limit_positive"),
        ),
        sa.CheckConstraint(
            "overdraft_minor >= 0", name=op.f("ck_deposit_accounts_overdraft_non_negative")
        ),
        sa.CheckConstraint(
            "per_payment_limit_minor IS NULL OR per_payment_limit_minor > 0",
            name=op.f("ck_deposit_accounts_per_payment_limit_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_deposit_accounts_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_deposit_accounts_ledger_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_accounts")),
        sa.UniqueConstraint("account_number", name=op.f("uq_deposit_accounts_account_number")),
        sa.UniqueConstraint(
            "customer_id", "currency", name="uq_deposit_accounts_customer_currency"
        ),
        sa.UniqueConstraint("iban", name=op.f("uq_deposit_accounts_iban")),
        sa.UniqueConstraint(
            "ledger_account_id", name=op.f("uq_deposit_accounts_ledger_account_id")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_deposit_accounts_public_id")),
    )

    with op.batch_alter_table("deposit_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deposit_accounts_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deposit_accounts_status"), ["status"], unique=False)

    op.create_table(
        "deposit_daily_usage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "deposit_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "used_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.CheckConstraint(
            "used_minor >= 0", name=op.f("ck_deposit_daily_usage_used_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["deposit_account_id"],
            ["deposit_accounts.id"],
            name=op.f("fk_deposit_daily_usage_deposit_account_id_deposit_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_daily_usage")),
        sa.UniqueConstraint("deposit_account_id", "day", name="uq_deposit_daily_usage_account_day"),
    )

    op.create_table(
        "payments",
        sa.Column(
            "deposit_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "payee_kind",
            sa.Enum(
                "merchant",
                "partner",
                name="payeekind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("payee_ref", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "amount_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "captured_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunded_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "authorised",
                "captured",
                "partially_refunded",
                "refunded",
                "voided",
                "expired",
                "declined",
                name="paymentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "decline_code",
            sa.Enum(
                "insufficient_funds",
                "account_blocked",
                "account_closed",
                "per_payment_limit",
                "daily_limit",
                "currency_mismatch",
                name="declinecode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("decline_message", sa.Text(), nullable=True),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column("category", sa.String(length=60), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "hold_transaction_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "capture_transaction_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("usage_day", sa.Date(), nullable=True),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "(status = 'declined') = (decline_code IS NOT NULL)",
            name=op.f("ck_payments_declined_has_code"),
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint(
            "captured_minor >= 0 AND captured_minor <= amount_minor",
            name=op.f("ck_payments_captured_within"),
        ),
        sa.CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= captured_minor",
            name=op.f("ck_payments_refunded_within"),
        ),
        sa.ForeignKeyConstraint(
            ["capture_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_payments_capture_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["deposit_account_id"],
            ["deposit_accounts.id"],
            name=op.f("fk_payments_deposit_account_id_deposit_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["hold_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_payments_hold_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "capture_transaction_id", name=op.f("uq_payments_capture_transaction_id")
        ),
        sa.UniqueConstraint("hold_transaction_id", name=op.f("uq_payments_hold_transaction_id")),
        sa.UniqueConstraint("public_id", name=op.f("uq_payments_public_id")),
    )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payments_account_created", ["deposit_account_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_payments_payee", ["payee_kind", "payee_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_reference"), ["reference"], unique=False)
        batch_op.create_index("ix_payments_status_expires", ["status", "expires_at"], unique=False)

    op.create_table(
        "payment_operations",
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "authorise",
                "capture",
                "void",
                "refund",
                "expire",
                name="operationkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=320), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "amount_minor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "approved",
                "declined",
                name="outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "decline_code",
            sa.Enum(
                "insufficient_funds",
                "account_blocked",
                "account_closed",
                "per_payment_limit",
                "daily_limit",
                "currency_mismatch",
                name="declinecode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "ledger_transaction_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("requested_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "result",
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
            "amount_minor >= 0", name=op.f("ck_payment_operations_amount_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["ledger_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_payment_operations_ledger_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_operations_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_operations")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payment_operations_idempotency_key")),
        sa.UniqueConstraint("public_id", name=op.f("uq_payment_operations_public_id")),
    )

    with op.batch_alter_table("payment_operations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_operations_payment_id"), ["payment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_operations_payment_id"))

    op.drop_table("payment_operations")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_status_expires")
        batch_op.drop_index(batch_op.f("ix_payments_reference"))
        batch_op.drop_index("ix_payments_payee")
        batch_op.drop_index("ix_payments_account_created")

    op.drop_table("payments")

    op.drop_table("deposit_daily_usage")

    with op.batch_alter_table("deposit_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deposit_accounts_status"))
        batch_op.drop_index(batch_op.f("ix_deposit_accounts_customer_id"))

    op.drop_table("deposit_accounts")
