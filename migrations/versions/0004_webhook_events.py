"""Verified Stripe webhook events, one row per Stripe event id.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=30), server_default="", nullable=False),
        sa.Column("error", sa.String(length=500), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("received_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('applied', 'stale', 'ignored', 'failed')",
            name=op.f("ck_webhook_events_status_known"),
        ),
        sa.CheckConstraint("attempts >= 1", name=op.f("ck_webhook_events_attempts_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_webhook_events_event_id")),
    )
    op.create_index(
        "ix_webhook_events_received_time", "webhook_events", ["received_time"], unique=False
    )
    # The replay command reads the failed ones, oldest first.
    op.create_index(
        "ix_webhook_events_failed",
        "webhook_events",
        ["received_time"],
        unique=False,
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.create_index("ix_webhook_events_payment_id", "webhook_events", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_events_payment_id", table_name="webhook_events")
    op.drop_index(
        "ix_webhook_events_failed",
        table_name="webhook_events",
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.drop_index("ix_webhook_events_received_time", table_name="webhook_events")
    op.drop_table("webhook_events")
