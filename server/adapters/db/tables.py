"""The schema as SQLAlchemy Core tables; migrations/ creates it, constraints included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from server.domain.billing_period import Interval
from server.domain.payment_states import DEAD_STATES, PaymentState
from server.domain.plan import PlanState
from server.domain.refund import RefundState
from server.domain.subscription import SubscriptionState


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC out; naive UTC on SQLite, timestamptz on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)
_states = ", ".join(f"'{s.value}'" for s in PaymentState)
_dead = ", ".join(f"'{s.value}'" for s in sorted(DEAD_STATES))
LIVE_PAYMENT = sa.text(f"state NOT IN ({_dead})")

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("order_id", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_payment_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("payment_method_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("capture_method", sa.String(16), nullable=False),
    sa.Column("amount_captured", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("amount_refunded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failure_code", sa.String(64), nullable=False, server_default=""),
    sa.Column("failure_message", sa.String(500), nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("event_sequence", sa.Integer, nullable=False),
    sa.Column("reconcile_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_reconcile_time", UTCDateTime, nullable=True),
    sa.Column("capture_time", UTCDateTime, nullable=True),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("update_time", UTCDateTime, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint(
        "amount_captured >= 0 AND amount_captured <= amount", name="captured_within_amount"
    ),
    sa.CheckConstraint(
        "amount_refunded >= 0 AND amount_refunded <= amount_captured",
        name="refunded_within_captured",
    ),
    sa.CheckConstraint(f"state IN ({_states})", name="state_known"),
    sa.CheckConstraint("capture_method IN ('AUTOMATIC', 'MANUAL')", name="capture_method_known"),
    # An order id names one user's order (see README, "Orders belong to their user").
    sa.Index(
        "uq_payments_live_user_id_order_id",
        "user_id",
        "order_id",
        unique=True,
        postgresql_where=LIVE_PAYMENT,
        sqlite_where=LIVE_PAYMENT,
    ),
    sa.Index("ix_payments_order_id", "order_id"),
    sa.Index("ix_payments_user_id_create_time", "user_id", "create_time", "id"),
    sa.Index("ix_payments_state_create_time", "state", "create_time", "id"),
    sa.Index("ix_payments_create_time", "create_time", "id"),
    sa.Index("ix_payments_amount", "amount", "id"),
    # Payment analytics read only this (an index-only scan of a create_time range).
    sa.Index(
        "ix_payments_create_time_covering",
        "create_time",
        postgresql_include=[
            "currency_code",
            "provider",
            "state",
            "amount_captured",
            "amount_refunded",
        ],
    ),
    sa.Index("ix_payments_provider_payment_id", "provider", "provider_payment_id"),
    sa.Index(
        "ix_payments_next_reconcile_time",
        "next_reconcile_time",
        postgresql_where=sa.text("next_reconcile_time IS NOT NULL"),
        sqlite_where=sa.text("next_reconcile_time IS NOT NULL"),
    ),
)

# The payments that took money (MONEY_TAKEN_STATES) summed per UTC hour of their
# create_time and currency, so that a revenue series over a year reads ~9,000 hours
# instead of every payment. Triggers on payments (migration 0007) append every change
# to payment_revenue_changes in the writer's transaction (insert only: writers never
# wait on a shared sum row); the revenue roll-up job moves them into
# payment_revenue_hours. Readers add both, so figures are exact at any moment.
payment_revenue_hours = sa.Table(
    "payment_revenue_hours",
    metadata,
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("currency_code", sa.String(3), primary_key=True),
    sa.Column("payment_count", sa.BigInteger, nullable=False),
    sa.Column("amount_captured", sa.BigInteger, nullable=False),
    sa.Column("amount_refunded", sa.BigInteger, nullable=False),
)

payment_revenue_changes = sa.Table(
    "payment_revenue_changes",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("hour", UTCDateTime, nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("payment_count", sa.BigInteger, nullable=False),
    sa.Column("amount_captured", sa.BigInteger, nullable=False),
    sa.Column("amount_refunded", sa.BigInteger, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("caller", sa.String(255), primary_key=True),
    sa.Column("request_id", sa.String(255), primary_key=True),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(30), nullable=True),
    # The first outcome, replayed as it was; NULL while the first call runs.
    sa.Column("response", sa.LargeBinary, nullable=True),
    # While the first call runs, others get IDEMPOTENCY_KEY_IN_USE until this
    # passes; then a retry may take over (the first caller crashed).
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("expire_time", UTCDateTime, nullable=False),
    sa.Index("ix_idempotency_keys_expire_time", "expire_time"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("aggregate_type", sa.String(32), nullable=False),
    sa.Column("aggregate_id", sa.String(30), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=True),
    # W3C trace context of the transaction that wrote the row; carried to the message.
    sa.Column("traceparent", sa.String(55), nullable=True),
    sa.Column("tracestate", sa.String(512), nullable=True),
    # The message id of the queued command that caused the event (docs/commands.md).
    sa.Column("correlation_id", sa.String(255), nullable=True),
    sa.UniqueConstraint("aggregate_type", "aggregate_id", "sequence"),
    sa.Index(
        "ix_outbox_unpublished",
        "id",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
)

# A user may have one default among their attached methods.
DEFAULT_ATTACHED_METHOD = sa.text("is_default AND detach_time IS NULL")

payment_methods = sa.Table(
    "payment_methods",
    metadata,
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_customer_id", sa.String(255), nullable=False),
    sa.Column("provider_payment_method_id", sa.String(255), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    # Only what a receipt shows: never a card number, CVC or secret.
    sa.Column("brand", sa.String(32), nullable=False),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("exp_month", sa.Integer, nullable=False),
    sa.Column("exp_year", sa.Integer, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    # {"name", "email", "phone", "address": {"line1", "line2", "city", "state",
    #  "postal_code", "country"}}
    sa.Column("billing_details", sa.JSON, nullable=False),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("update_time", UTCDateTime, nullable=False),
    # NULL while attached; a detached method is kept for the record only.
    sa.Column("detach_time", UTCDateTime, nullable=True),
    sa.CheckConstraint("type IN ('card')", name="type_known"),
    # A column that cannot hold more than four characters cannot hold a card number.
    sa.CheckConstraint("length(last4) <= 4", name="last4_short"),
    sa.CheckConstraint("exp_month BETWEEN 1 AND 12", name="exp_month_valid"),
    sa.CheckConstraint("exp_year BETWEEN 2000 AND 9999", name="exp_year_valid"),
    sa.CheckConstraint("NOT (is_default AND detach_time IS NOT NULL)", name="detached_not_default"),
    sa.Index(
        "uq_payment_methods_default_user_id",
        "user_id",
        unique=True,
        postgresql_where=DEFAULT_ATTACHED_METHOD,
        sqlite_where=DEFAULT_ATTACHED_METHOD,
    ),
    sa.Index("ix_payment_methods_user_id_create_time", "user_id", "create_time", "id"),
    sa.Index(
        "ix_payment_methods_provider_payment_method_id", "provider", "provider_payment_method_id"
    ),
)

# One customer at each provider per user, created on first use.
provider_customers = sa.Table(
    "provider_customers",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("provider", sa.String(32), primary_key=True),
    sa.Column("provider_customer_id", sa.String(255), nullable=False),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.UniqueConstraint("provider", "provider_customer_id"),
)

# Every verified Stripe webhook, kept for audit and replay; unique per Stripe event id.
WEBHOOK_EVENT_FAILED = sa.text("status = 'failed'")

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(255), nullable=False, unique=True),
    sa.Column("type", sa.String(255), nullable=False),
    # The body as signed and received: the provider's JSON, never our secrets.
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(30), nullable=False, server_default=""),
    # An exception's class name at most: no messages, which may quote data.
    sa.Column("error", sa.String(500), nullable=False, server_default=""),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("received_time", UTCDateTime, nullable=False),
    sa.Column("applied_time", UTCDateTime, nullable=True),
    sa.CheckConstraint(
        "status IN ('applied', 'stale', 'ignored', 'failed', 'rejected')", name="status_known"
    ),
    sa.CheckConstraint("attempts >= 1", name="attempts_positive"),
    sa.Index("ix_webhook_events_received_time", "received_time"),
    sa.Index(
        "ix_webhook_events_failed",
        "received_time",
        postgresql_where=WEBHOOK_EVENT_FAILED,
        sqlite_where=WEBHOOK_EVENT_FAILED,
    ),
    sa.Index("ix_webhook_events_payment_id", "payment_id"),
)

# Money given back for payments; the amounts of PENDING and SUCCEEDED ones never
# add up to more than the payment captured (checked under the payment's row lock).
REFUND_HAS_PROVIDER_ID = sa.text("provider_refund_id <> ''")
_refund_states = ", ".join(f"'{s.value}'" for s in RefundState)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("payment_id", sa.String(30), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False, server_default=""),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_refund_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("failure_code", sa.String(64), nullable=False, server_default=""),
    sa.Column("failure_message", sa.String(500), nullable=False, server_default=""),
    sa.Column("window_override_reason", sa.String(500), nullable=False, server_default=""),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("update_time", UTCDateTime, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint(f"state IN ({_refund_states})", name="state_known"),
    # ListRefunds pages one payment's refunds in (create_time, id) order.
    sa.Index("ix_refunds_payment_id_create_time_id", "payment_id", "create_time", "id"),
    sa.Index(
        "uq_refunds_provider_provider_refund_id",
        "provider",
        "provider_refund_id",
        unique=True,
        postgresql_where=REFUND_HAS_PROVIDER_ID,
        sqlite_where=REFUND_HAS_PROVIDER_ID,
    ),
)

_intervals = ", ".join(f"'{i.value}'" for i in Interval)
_plan_states = ", ".join(f"'{s.value}'" for s in PlanState)

# What a subscription costs per period; never deleted, archived ones stay readable.
plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("interval", sa.String(8), nullable=False),
    sa.Column("interval_count", sa.Integer, nullable=False),
    sa.Column("trial_days", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("archive_time", UTCDateTime, nullable=True),
    sa.CheckConstraint("price > 0", name="price_positive"),
    sa.CheckConstraint(f"interval IN ({_intervals})", name="interval_known"),
    sa.CheckConstraint("interval_count >= 1", name="interval_count_positive"),
    sa.CheckConstraint("trial_days >= 0", name="trial_days_not_negative"),
    sa.CheckConstraint(f"state IN ({_plan_states})", name="state_known"),
    sa.Index("ix_plans_create_time_id", "create_time", "id"),
)

_subscription_states = ", ".join(f"'{s.value}'" for s in SubscriptionState)
SUBSCRIPTION_DUE = sa.text("due_time IS NOT NULL")

# Users paying for plans; period k starts at the plan's k-th boundary after billing_anchor.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("plan_id", sa.String(30), sa.ForeignKey("plans.id"), nullable=False),
    sa.Column("pending_plan_id", sa.String(30), nullable=False, server_default=""),
    sa.Column("payment_method_id", sa.String(30), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_subscription_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("billing_anchor", UTCDateTime, nullable=False),
    sa.Column("periods_paid", sa.Integer, nullable=False),
    sa.Column("current_period_start", UTCDateTime, nullable=False),
    sa.Column("current_period_end", UTCDateTime, nullable=False),
    sa.Column("trial_end", UTCDateTime, nullable=True),
    sa.Column("cancel_at_period_end", sa.Boolean, nullable=False),
    sa.Column("latest_payment_id", sa.String(30), nullable=False, server_default=""),
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_retry_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("end_reason", sa.String(32), nullable=False, server_default=""),
    # When the renewal job next acts (charge, retry, expire); NULL once ended.
    sa.Column("due_time", UTCDateTime, nullable=True),
    sa.Column("event_sequence", sa.Integer, nullable=False),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("update_time", UTCDateTime, nullable=False),
    sa.CheckConstraint(f"state IN ({_subscription_states})", name="state_known"),
    sa.CheckConstraint("periods_paid >= 0", name="periods_paid_not_negative"),
    sa.CheckConstraint("failed_attempts >= 0", name="failed_attempts_not_negative"),
    sa.Index("ix_subscriptions_user_id_create_time_id", "user_id", "create_time", "id"),
    sa.Index(
        "ix_subscriptions_due_time",
        "due_time",
        postgresql_where=SUBSCRIPTION_DUE,
        sqlite_where=SUBSCRIPTION_DUE,
    ),
    sa.Index("ix_subscriptions_provider_subscription_id", "provider", "provider_subscription_id"),
)

# One receipt per payment that took money and per refund that gave it back. The
# row is written in the transaction that moved the money (insert only: nothing
# shared is locked there); the numbering job gives it its number afterwards, in a
# transaction of its own that also advances receipt_counters, so that a number is
# taken if and only if a receipt keeps it (docs/receipts.md says why).
UNNUMBERED_RECEIPT = sa.text("number IS NULL")
receipts = sa.Table(
    "receipts",
    metadata,
    # The payment's or the refund's id.
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(30), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("order_id", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("issue_time", UTCDateTime, nullable=False),
    # Filled by the numbering job, all at once.
    sa.Column("number", sa.String(20), nullable=True, unique=True),
    sa.Column("year", sa.Integer, nullable=True),
    sa.Column("sequence", sa.BigInteger, nullable=True),
    sa.Column("merchant", sa.String(255), nullable=False, server_default=""),
    sa.Column("card_brand", sa.String(32), nullable=False, server_default=""),
    sa.Column("card_last4", sa.String(4), nullable=False, server_default=""),
    sa.Column("customer_email", sa.String(255), nullable=False, server_default=""),
    sa.Column("number_time", UTCDateTime, nullable=True),
    sa.CheckConstraint("kind IN ('PAYMENT', 'REFUND')", name="kind_known"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint(
        "(number IS NULL) = (year IS NULL) AND (number IS NULL) = (sequence IS NULL)",
        name="numbered_whole",
    ),
    sa.UniqueConstraint("year", "sequence"),
    sa.Index("ix_receipts_payment_id", "payment_id"),
    sa.Index(
        "ix_receipts_unnumbered",
        "issue_time",
        postgresql_where=UNNUMBERED_RECEIPT,
        sqlite_where=UNNUMBERED_RECEIPT,
    ),
)

# The last receipt number taken per year; only the numbering job writes it.
receipt_counters = sa.Table(
    "receipt_counters",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
)

# The audit trail: append-only (on PostgreSQL a trigger refuses UPDATE); the
# retention job deletes records older than PAYMENTS_AUDIT_RETENTION_DAYS.
audit_events = sa.Table(
    "audit_events",
    metadata,
    # "aud_" + ULID: sorts by time, so pages run newest first by id.
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("occur_time", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("issuer", sa.String(255), nullable=False),
    sa.Column("roles", sa.String(128), nullable=False),
    sa.Column("calling_service", sa.String(255), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("resource_id", sa.String(255), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_audit_events_resource_id", "resource_id"),
    sa.Index("ix_audit_events_occur_time", "occur_time"),
)

# What the provider was asked and answered, per payment and refund, for support:
# scrubbed of secrets, then sealed with AES-GCM under `key_id` (PAYMENTS_PROVIDER_LOG_KEYS).
provider_exchanges = sa.Table(
    "provider_exchanges",
    metadata,
    sa.Column("id", sa.String(30), primary_key=True),
    sa.Column("create_time", UTCDateTime, nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(255), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("payment_id", sa.String(30), nullable=False),
    sa.Column("provider_payment_id", sa.String(255), nullable=False),
    sa.Column("provider_refund_id", sa.String(255), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("sealed_body", sa.LargeBinary, nullable=False),
    sa.Index("ix_provider_exchanges_payment_id", "payment_id"),
    sa.Index("ix_provider_exchanges_provider_payment_id", "provider_payment_id"),
)
