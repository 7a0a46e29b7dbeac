"""Payment reconciliation schedule.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column("reconcile_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "payments", sa.Column("next_reconcile_time", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_payments_next_reconcile_time",
        "payments",
        ["next_reconcile_time"],
        unique=False,
        postgresql_where=sa.text("next_reconcile_time IS NOT NULL"),
        sqlite_where=sa.text("next_reconcile_time IS NOT NULL"),
    )
    # Payments already waiting on the provider get their first check at once.
    op.execute(
        "UPDATE payments SET next_reconcile_time = update_time "
        "WHERE state IN ('PROCESSING', 'REQUIRES_ACTION')"
    )


def downgrade() -> None:
    op.drop_index("ix_payments_next_reconcile_time", table_name="payments")
    op.drop_column("payments", "next_reconcile_time")
    op.drop_column("payments", "reconcile_attempts")
