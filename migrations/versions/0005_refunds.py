"""Refunds of payments.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_PROVIDER_ID = sa.text("provider_refund_id <> ''")


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("payment_id", sa.String(length=30), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), server_default="", nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), server_default="", nullable=False),
        sa.Column("failure_code", sa.String(length=64), server_default="", nullable=False),
        sa.Column("failure_message", sa.String(length=500), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.CheckConstraint(
            "state IN ('PENDING', 'SUCCEEDED', 'FAILED', 'CANCELED')",
            name=op.f("ck_refunds_state_known"),
        ),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index(
        "ix_refunds_payment_id_create_time_id",
        "refunds",
        ["payment_id", "create_time", "id"],
        unique=False,
    )
    op.create_index(
        "uq_refunds_provider_provider_refund_id",
        "refunds",
        ["provider", "provider_refund_id"],
        unique=True,
        postgresql_where=HAS_PROVIDER_ID,
        sqlite_where=HAS_PROVIDER_ID,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_refunds_provider_provider_refund_id",
        table_name="refunds",
        postgresql_where=HAS_PROVIDER_ID,
        sqlite_where=HAS_PROVIDER_ID,
    )
    op.drop_index("ix_refunds_payment_id_create_time_id", table_name="refunds")
    op.drop_table("refunds")
