"""Order ids are scoped per user; webhook events can be stored as rejected.

An order id names one user's order: at most one live payment per (user_id, order_id),
so that no customer can block another user's order by paying under its id first.
A signed webhook event whose content can never be applied is kept as 'rejected'.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("state NOT IN ('CANCELED', 'FAILED')")
STATUSES = "'applied', 'stale', 'ignored', 'failed'"


def upgrade() -> None:
    op.drop_index(
        "uq_payments_live_order_id", table_name="payments", postgresql_where=LIVE, sqlite_where=LIVE
    )
    op.create_index(
        "uq_payments_live_user_id_order_id",
        "payments",
        ["user_id", "order_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_constraint(op.f("ck_webhook_events_status_known"), type_="check")
        batch.create_check_constraint("status_known", f"status IN ({STATUSES}, 'rejected')")


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_constraint(op.f("ck_webhook_events_status_known"), type_="check")
        batch.create_check_constraint("status_known", f"status IN ({STATUSES})")
    op.drop_index(
        "uq_payments_live_user_id_order_id",
        table_name="payments",
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "uq_payments_live_order_id",
        "payments",
        ["order_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
