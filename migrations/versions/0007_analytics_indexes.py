"""A covering index for payment analytics over a create_time range.

Revision ID: 0007
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Everything GetPaymentStats and GetRevenueSeries read: PostgreSQL answers them with an
# index-only scan of the range. SQLite has no INCLUDE: there it indexes create_time.
ANALYTICS_COLUMNS = ["currency_code", "provider", "state", "amount_captured", "amount_refunded"]


def upgrade() -> None:
    op.create_index(
        "ix_payments_create_time_covering",
        "payments",
        ["create_time"],
        unique=False,
        postgresql_include=ANALYTICS_COLUMNS,
    )


def downgrade() -> None:
    op.drop_index("ix_payments_create_time_covering", table_name="payments")
