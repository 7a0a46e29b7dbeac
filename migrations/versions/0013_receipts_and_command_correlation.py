"""Receipts, numbered without gaps per year; the queued command behind an outbox event.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNNUMBERED = sa.text("number IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(length=255), nullable=True))
    op.create_table(
        "receipts",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=30), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("issue_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("merchant", sa.String(length=255), server_default="", nullable=False),
        sa.Column("card_brand", sa.String(length=32), server_default="", nullable=False),
        sa.Column("card_last4", sa.String(length=4), server_default="", nullable=False),
        sa.Column("customer_email", sa.String(length=255), server_default="", nullable=False),
        sa.Column("number_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('PAYMENT', 'REFUND')", name=op.f("ck_receipts_kind_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_receipts_amount_positive")),
        sa.CheckConstraint(
            "(number IS NULL) = (year IS NULL) AND (number IS NULL) = (sequence IS NULL)",
            name=op.f("ck_receipts_numbered_whole"),
        ),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("number", name=op.f("uq_receipts_number")),
        sa.UniqueConstraint("year", "sequence", name=op.f("uq_receipts_year_sequence")),
    )
    op.create_index("ix_receipts_payment_id", "receipts", ["payment_id"], unique=False)
    op.create_index(
        "ix_receipts_unnumbered",
        "receipts",
        ["issue_time"],
        unique=False,
        postgresql_where=UNNUMBERED,
        sqlite_where=UNNUMBERED,
    )
    op.create_table(
        "receipt_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_receipt_counters")),
    )


def downgrade() -> None:
    op.drop_table("receipt_counters")
    op.drop_index(
        "ix_receipts_unnumbered",
        table_name="receipts",
        postgresql_where=UNNUMBERED,
        sqlite_where=UNNUMBERED,
    )
    op.drop_index("ix_receipts_payment_id", table_name="receipts")
    op.drop_table("receipts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("correlation_id")
