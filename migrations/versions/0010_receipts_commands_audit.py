"""Receipts, numbered without gaps per year; the queued command behind an outbox event;
the audit trail and the provider's sealed exchanges.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNNUMBERED = sa.text("number IS NULL")
# Audit records are never changed; only the retention job deletes old ones.
APPEND_ONLY = (
    """CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
)


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
    _create_audit_events()
    _create_provider_exchanges()


def _create_audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("occur_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.String(length=128), nullable=False),
        sa.Column("calling_service", sa.String(length=255), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_resource_id", "audit_events", ["resource_id"], unique=False)
    op.create_index("ix_audit_events_occur_time", "audit_events", ["occur_time"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in APPEND_ONLY:
            op.execute(statement)


def _create_provider_exchanges() -> None:
    op.create_table(
        "provider_exchanges",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.String(length=30), nullable=False),
        sa.Column("provider_payment_id", sa.String(length=255), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_exchanges")),
    )
    op.create_index(
        "ix_provider_exchanges_payment_id", "provider_exchanges", ["payment_id"], unique=False
    )
    op.create_index(
        "ix_provider_exchanges_provider_payment_id",
        "provider_exchanges",
        ["provider_payment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("provider_exchanges")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("audit_events")
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
