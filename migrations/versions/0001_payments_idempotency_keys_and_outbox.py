"""Payments, idempotency keys and the outbox.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=30), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "request_id", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_expire_time", "idempotency_keys", ["expire_time"], unique=False
    )

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_type", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=30), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint(
            "aggregate_type",
            "aggregate_id",
            "sequence",
            name=op.f("uq_outbox_aggregate_type_aggregate_id_sequence"),
        ),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_payment_id", sa.String(length=255), server_default="", nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), server_default="", nullable=False),
        sa.Column("capture_method", sa.String(length=16), nullable=False),
        sa.Column("amount_captured", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failure_code", sa.String(length=64), server_default="", nullable=False),
        sa.Column("failure_message", sa.String(length=500), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("event_sequence", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "capture_method IN ('AUTOMATIC', 'MANUAL')",
            name=op.f("ck_payments_capture_method_known"),
        ),
        sa.CheckConstraint(
            "state IN ('REQUIRES_PAYMENT_METHOD', 'REQUIRES_CONFIRMATION', 'REQUIRES_ACTION', "
            "'PROCESSING', 'REQUIRES_CAPTURE', 'SUCCEEDED', 'FAILED', 'CANCELED', "
            "'PARTIALLY_REFUNDED', 'REFUNDED')",
            name=op.f("ck_payments_state_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint(
            "amount_captured >= 0 AND amount_captured <= amount",
            name=op.f("ck_payments_captured_within_amount"),
        ),
        sa.CheckConstraint(
            "amount_refunded >= 0 AND amount_refunded <= amount_captured",
            name=op.f("ck_payments_refunded_within_captured"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index("ix_payments_amount", "payments", ["amount", "id"], unique=False)
    op.create_index("ix_payments_create_time", "payments", ["create_time", "id"], unique=False)
    op.create_index("ix_payments_order_id", "payments", ["order_id"], unique=False)
    op.create_index(
        "ix_payments_provider_payment_id",
        "payments",
        ["provider", "provider_payment_id"],
        unique=False,
    )
    op.create_index(
        "ix_payments_state_create_time", "payments", ["state", "create_time", "id"], unique=False
    )
    op.create_index(
        "ix_payments_user_id_create_time",
        "payments",
        ["user_id", "create_time", "id"],
        unique=False,
    )
    op.create_index(
        "uq_payments_live_order_id",
        "payments",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("state NOT IN ('CANCELED', 'FAILED')"),
        sqlite_where=sa.text("state NOT IN ('CANCELED', 'FAILED')"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_payments_live_order_id",
        table_name="payments",
        postgresql_where=sa.text("state NOT IN ('CANCELED', 'FAILED')"),
        sqlite_where=sa.text("state NOT IN ('CANCELED', 'FAILED')"),
    )
    op.drop_index("ix_payments_user_id_create_time", table_name="payments")
    op.drop_index("ix_payments_state_create_time", table_name="payments")
    op.drop_index("ix_payments_provider_payment_id", table_name="payments")
    op.drop_index("ix_payments_order_id", table_name="payments")
    op.drop_index("ix_payments_create_time", table_name="payments")
    op.drop_index("ix_payments_amount", table_name="payments")

    op.drop_table("payments")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )

    op.drop_table("outbox")
    op.drop_index("ix_idempotency_keys_expire_time", table_name="idempotency_keys")

    op.drop_table("idempotency_keys")
