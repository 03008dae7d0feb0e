"""The insurance partner and its policies, and a rotated webhook secret's grace period.

- `partners.kind`: `retailer` (every partner so far) or `insurer`; at most one active insurer
  per currency (a partial unique index), the one underwriting the bank's device protection.
- `shop_protection_policies`: an order's device-protection policy, issued with its insurer when
  the premium is captured; when the premium was passed on and the bank's commission on it.
- `shop_webhook_endpoints.previous_secret` / `previous_secret_until`: the secret a rotation
  replaced, signing beside the new one until then.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beyondbank.core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE_INSURER = "kind = 'insurer' AND status = 'active'"


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "retailer",
                    "insurer",
                    name="partnerkind",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                server_default="retailer",
                nullable=False,
            )
        )
    op.create_index(
        "uq_partners_active_insurer_currency",
        "partners",
        ["currency"],
        unique=True,
        sqlite_where=sa.text(_ACTIVE_INSURER),
        postgresql_where=sa.text(_ACTIVE_INSURER),
    )
    op.create_table(
        "shop_protection_policies",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "insurer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("policy_ref", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "premium_minor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("issued_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("passed_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "commission_minor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("cancelled_at", beyondbank.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "commission_minor IS NULL OR (commission_minor >= 0 "
            "AND commission_minor <= premium_minor)",
            name=op.f("ck_shop_protection_policies_commission_within_premium"),
        ),
        sa.CheckConstraint(
            "premium_minor > 0", name=op.f("ck_shop_protection_policies_premium_positive")
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"],
            ["partners.id"],
            name=op.f("fk_shop_protection_policies_insurer_id_partners"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shop_orders.id"],
            name=op.f("fk_shop_protection_policies_order_id_shop_orders"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_shop_protection_policies")),
        sa.UniqueConstraint("policy_ref", name=op.f("uq_shop_protection_policies_policy_ref")),
    )
    with op.batch_alter_table("shop_protection_policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shop_protection_policies_insurer_id"), ["insurer_id"], unique=False
        )
    with op.batch_alter_table("shop_webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_secret_until",
                beyondbank.core.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("shop_webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_secret")
    with op.batch_alter_table("shop_protection_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_protection_policies_insurer_id"))
    op.drop_table("shop_protection_policies")
    op.drop_index("uq_partners_active_insurer_currency", table_name="partners")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_constraint("partnerkind", type_="check")
        batch_op.drop_column("kind")
