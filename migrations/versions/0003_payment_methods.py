"""Saved payment methods and the provider customers they are attached to.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ATTACHED_METHOD = sa.text("is_default AND detach_time IS NULL")


def upgrade() -> None:
    op.create_table(
        "provider_customers",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_customer_id", sa.String(length=255), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "provider", name=op.f("pk_provider_customers")),
        sa.UniqueConstraint(
            "provider",
            "provider_customer_id",
            name=op.f("uq_provider_customers_provider_provider_customer_id"),
        ),
    )

    op.create_table(
        "payment_methods",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_customer_id", sa.String(length=255), nullable=False),
        sa.Column("provider_payment_method_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("billing_details", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detach_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("type IN ('card')", name=op.f("ck_payment_methods_type_known")),
        sa.CheckConstraint("length(last4) <= 4", name=op.f("ck_payment_methods_last4_short")),
        sa.CheckConstraint(
            "exp_month BETWEEN 1 AND 12", name=op.f("ck_payment_methods_exp_month_valid")
        ),
        sa.CheckConstraint(
            "exp_year BETWEEN 2000 AND 9999", name=op.f("ck_payment_methods_exp_year_valid")
        ),
        sa.CheckConstraint(
            "NOT (is_default AND detach_time IS NOT NULL)",
            name=op.f("ck_payment_methods_detached_not_default"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
    )
    op.create_index(
        "ix_payment_methods_user_id_create_time",
        "payment_methods",
        ["user_id", "create_time", "id"],
        unique=False,
    )
    op.create_index(
        "ix_payment_methods_provider_payment_method_id",
        "payment_methods",
        ["provider", "provider_payment_method_id"],
        unique=False,
    )
    # At most one default per user among the attached methods.
    op.create_index(
        "uq_payment_methods_default_user_id",
        "payment_methods",
        ["user_id"],
        unique=True,
        postgresql_where=DEFAULT_ATTACHED_METHOD,
        sqlite_where=DEFAULT_ATTACHED_METHOD,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_payment_methods_default_user_id",
        table_name="payment_methods",
        postgresql_where=DEFAULT_ATTACHED_METHOD,
        sqlite_where=DEFAULT_ATTACHED_METHOD,
    )
    op.drop_index("ix_payment_methods_provider_payment_method_id", table_name="payment_methods")
    op.drop_index("ix_payment_methods_user_id_create_time", table_name="payment_methods")
    op.drop_table("payment_methods")
    op.drop_table("provider_customers")
