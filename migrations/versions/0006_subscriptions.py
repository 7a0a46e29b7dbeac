"""Plans and subscriptions.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = sa.text("due_time IS NOT NULL")
STATES = "'TRIALING', 'ACTIVE', 'PAST_DUE', 'CANCELED', 'INCOMPLETE', 'INCOMPLETE_EXPIRED'"


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archive_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("price > 0", name=op.f("ck_plans_price_positive")),
        sa.CheckConstraint(
            "interval IN ('DAY', 'WEEK', 'MONTH', 'YEAR')", name=op.f("ck_plans_interval_known")
        ),
        sa.CheckConstraint("interval_count >= 1", name=op.f("ck_plans_interval_count_positive")),
        sa.CheckConstraint("trial_days >= 0", name=op.f("ck_plans_trial_days_not_negative")),
        sa.CheckConstraint("state IN ('ACTIVE', 'ARCHIVED')", name=op.f("ck_plans_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_index("ix_plans_create_time_id", "plans", ["create_time", "id"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("plan_id", sa.String(length=30), nullable=False),
        sa.Column("pending_plan_id", sa.String(length=30), server_default="", nullable=False),
        sa.Column("payment_method_id", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column(
            "provider_subscription_id", sa.String(length=255), server_default="", nullable=False
        ),
        sa.Column("billing_anchor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("periods_paid", sa.Integer(), nullable=False),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trial_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("latest_payment_id", sa.String(length=30), server_default="", nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_retry_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), server_default="", nullable=False),
        sa.Column("due_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_sequence", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_subscriptions_state_known")),
        sa.CheckConstraint(
            "periods_paid >= 0", name=op.f("ck_subscriptions_periods_paid_not_negative")
        ),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_subscriptions_failed_attempts_not_negative")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        "ix_subscriptions_user_id_create_time_id",
        "subscriptions",
        ["user_id", "create_time", "id"],
        unique=False,
    )
    op.create_index(
        "ix_subscriptions_due_time",
        "subscriptions",
        ["due_time"],
        unique=False,
        postgresql_where=DUE,
        sqlite_where=DUE,
    )
    op.create_index(
        "ix_subscriptions_provider_subscription_id",
        "subscriptions",
        ["provider", "provider_subscription_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_provider_subscription_id", table_name="subscriptions")
    op.drop_index(
        "ix_subscriptions_due_time",
        table_name="subscriptions",
        postgresql_where=DUE,
        sqlite_where=DUE,
    )
    op.drop_index("ix_subscriptions_user_id_create_time_id", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_plans_create_time_id", table_name="plans")
    op.drop_table("plans")
