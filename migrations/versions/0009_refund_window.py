"""The refund window: when a payment's money was taken, and an admin's override of it.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The states in which the provider has taken the money.
_TAKEN = "('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')"


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("capture_time", sa.DateTime(timezone=True), nullable=True))
    # Payments from before: their capture time is not known, the last change is at or
    # after it, so the window counts from there (it can only be longer, never shorter).
    op.execute(f"UPDATE payments SET capture_time = update_time WHERE state IN {_TAKEN}")  # noqa: S608
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(
            sa.Column(
                "window_override_reason", sa.String(length=500), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("window_override_reason")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("capture_time")
