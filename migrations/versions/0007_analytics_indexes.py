"""Payment analytics: a covering create_time index and revenue summed per UTC hour.

payment_revenue_hours holds, per UTC hour of create_time and currency, the count,
captured and refunded amounts of the payments that took money (SUCCEEDED,
PARTIALLY_REFUNDED, REFUNDED). Triggers on payments append every change to it as a
row of payment_revenue_changes, in the writer's transaction and whoever the writer
is; the revenue roll-up job sums those into payment_revenue_hours. Appending (not
updating a shared sum) keeps concurrent payments from queueing on one hour's row.
The upgrade fills payment_revenue_hours from the payments already there.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Everything GetPaymentStats reads: PostgreSQL answers it with an index-only scan of
# the range. SQLite has no INCLUDE: there it indexes create_time.
ANALYTICS_COLUMNS = ["currency_code", "provider", "state", "amount_captured", "amount_refunded"]
TOOK_MONEY = "('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')"
# The hour of a create_time, as each database stores it (SQLite: naive UTC text).
POSTGRES_HOUR = "date_trunc('hour', {row}.create_time, 'UTC')"
SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {row}.create_time)"
APPEND = (
    "INSERT INTO payment_revenue_changes"
    " (hour, currency_code, payment_count, amount_captured, amount_refunded)"
    " SELECT {hour}, {row}.currency_code, {sign}1, {sign}{row}.amount_captured,"
    " {sign}{row}.amount_refunded WHERE {row}.state IN " + TOOK_MONEY
)
CHANGED = (
    "OLD.state <> NEW.state OR OLD.amount_captured <> NEW.amount_captured"
    " OR OLD.amount_refunded <> NEW.amount_refunded OR OLD.create_time <> NEW.create_time"
    " OR OLD.currency_code <> NEW.currency_code"
)
# The rows each trigger fires for, and what it appends: minus the old, plus the new.
TRIGGERS = (
    ("INSERT", f"NEW.state IN {TOOK_MONEY}", (("NEW", ""),)),
    (
        "UPDATE",
        f"(OLD.state IN {TOOK_MONEY} OR NEW.state IN {TOOK_MONEY}) AND ({CHANGED})",
        (("OLD", "-"), ("NEW", "")),
    ),
    ("DELETE", f"OLD.state IN {TOOK_MONEY}", (("OLD", "-"),)),
)


def _append(hour: str, row: str, sign: str) -> str:
    return APPEND.format(hour=hour.format(row=row), row=row, sign=sign)


def _postgres_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION payment_revenue_follow() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                {_append(POSTGRES_HOUR, "OLD", "-")};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                {_append(POSTGRES_HOUR, "NEW", "")};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    for event, when, _ in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER payment_revenue_{event.lower()} AFTER {event} ON payments"
            f" FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION payment_revenue_follow()"
        )


def _sqlite_triggers() -> None:
    for event, when, rows in TRIGGERS:
        body = "".join(f"{_append(SQLITE_HOUR, row, sign)};\n" for row, sign in rows)
        op.execute(
            f"CREATE TRIGGER payment_revenue_{event.lower()} AFTER {event} ON payments"
            f" FOR EACH ROW WHEN {when} BEGIN\n{body}END"
        )


def _sums(name: str, *extra: sa.schema.SchemaItem) -> None:
    """A table of sums per hour and currency (both tables have the same columns)."""
    op.create_table(
        name,
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("payment_count", sa.BigInteger(), nullable=False),
        sa.Column("amount_captured", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        *extra,
    )


def upgrade() -> None:
    op.create_index(
        "ix_payments_create_time_covering",
        "payments",
        ["create_time"],
        unique=False,
        postgresql_include=ANALYTICS_COLUMNS,
    )
    _sums(
        "payment_revenue_hours",
        sa.PrimaryKeyConstraint("hour", "currency_code", name=op.f("pk_payment_revenue_hours")),
    )
    _sums(
        "payment_revenue_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_revenue_changes")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    hour = (POSTGRES_HOUR if postgres else SQLITE_HOUR).format(row="payments")
    # Built from this module's constants only, no input.
    op.execute(
        "INSERT INTO payment_revenue_hours"  # noqa: S608
        " (hour, currency_code, payment_count, amount_captured, amount_refunded)"
        f" SELECT {hour}, currency_code, count(*), sum(amount_captured), sum(amount_refunded)"
        f" FROM payments WHERE state IN {TOOK_MONEY} GROUP BY 1, 2"
    )
    if postgres:
        _postgres_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event, _, _ in TRIGGERS:
        on = " ON payments" if postgres else ""
        op.execute(f"DROP TRIGGER payment_revenue_{event.lower()}{on}")
    if postgres:
        op.execute("DROP FUNCTION payment_revenue_follow()")
    op.drop_table("payment_revenue_changes")
    op.drop_table("payment_revenue_hours")
    op.drop_index("ix_payments_create_time_covering", table_name="payments")
