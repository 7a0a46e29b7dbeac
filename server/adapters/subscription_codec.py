"""Plans and subscriptions to and from their protobuf form: API, replays and the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from payments.v1 import events_pb2
from payments.v1 import subscriptions_pb2 as pb

from server.adapters.codec import decoder, encoder, money_to_proto, new_envelope, timestamp
from server.domain.billing_period import Interval
from server.domain.money import Money
from server.domain.plan import Plan, PlanState
from server.domain.subscription import (
    SUBSCRIPTION_CANCELED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_PAST_DUE,
    SUBSCRIPTION_RENEWED,
    Subscription,
    SubscriptionEvent,
    SubscriptionState,
)

_INTERVAL_TO_PROTO = {i: pb.PlanInterval.Value(f"PLAN_INTERVAL_{i.value}") for i in Interval}
_INTERVAL_FROM_PROTO: dict[int, Interval] = {v: k for k, v in _INTERVAL_TO_PROTO.items()}
_PLAN_STATE_TO_PROTO = {s: pb.PlanState.Value(f"PLAN_STATE_{s.value}") for s in PlanState}
_PLAN_STATE_FROM_PROTO: dict[int, PlanState] = {v: k for k, v in _PLAN_STATE_TO_PROTO.items()}
_STATE_TO_PROTO = {
    s: pb.SubscriptionState.Value(f"SUBSCRIPTION_STATE_{s.value}") for s in SubscriptionState
}
_STATE_FROM_PROTO: dict[int, SubscriptionState] = {v: k for k, v in _STATE_TO_PROTO.items()}
_EVENT_FIELDS = {
    SUBSCRIPTION_CREATED: "subscription_created",
    SUBSCRIPTION_RENEWED: "subscription_renewed",
    SUBSCRIPTION_PAST_DUE: "subscription_past_due",
    SUBSCRIPTION_CANCELED: "subscription_canceled",
}


def interval_from_proto(value: int) -> Interval | None:
    return _INTERVAL_FROM_PROTO.get(value)


def _optional_time(moment: datetime | None) -> Timestamp | None:
    return timestamp(moment) if moment is not None else None


def _time_or_none(message: Timestamp, present: bool) -> datetime | None:
    return message.ToDatetime(UTC) if present else None


def plan_to_proto(plan: Plan) -> pb.Plan:
    return pb.Plan(
        id=plan.id,
        name=plan.name,
        price=money_to_proto(plan.price),
        interval=_INTERVAL_TO_PROTO[plan.interval],
        interval_count=plan.interval_count,
        trial_days=plan.trial_days,
        state=_PLAN_STATE_TO_PROTO[plan.state],
        create_time=timestamp(plan.create_time),
        archive_time=_optional_time(plan.archive_time),
    )


def plan_from_proto(message: pb.Plan) -> Plan:
    return Plan(
        id=message.id,
        name=message.name,
        price=Money(message.price.currency_code, message.price.minor_units),
        interval=_INTERVAL_FROM_PROTO[message.interval],
        interval_count=message.interval_count,
        trial_days=message.trial_days,
        state=_PLAN_STATE_FROM_PROTO[message.state],
        create_time=message.create_time.ToDatetime(UTC),
        archive_time=_time_or_none(message.archive_time, message.HasField("archive_time")),
    )


def subscription_to_proto(subscription: Subscription) -> pb.Subscription:
    s = subscription
    return pb.Subscription(
        id=s.id,
        user_id=s.user_id,
        plan_id=s.plan_id,
        payment_method_id=s.payment_method_id,
        state=_STATE_TO_PROTO[s.state],
        current_period_start=timestamp(s.current_period_start),
        current_period_end=timestamp(s.current_period_end),
        trial_end=_optional_time(s.trial_end),
        cancel_at_period_end=s.cancel_at_period_end,
        pending_plan_id=s.pending_plan_id,
        latest_payment_id=s.latest_payment_id,
        failed_attempts=s.failed_attempts,
        next_retry_time=_optional_time(s.next_retry_time),
        end_time=_optional_time(s.end_time),
        end_reason=s.end_reason,
        provider=s.provider,
        provider_subscription_id=s.provider_subscription_id,
        create_time=timestamp(s.create_time),
        update_time=timestamp(s.update_time),
    )


def subscription_from_proto(m: pb.Subscription) -> Subscription:
    """Only what the API shows is restored (enough to replay a stored response)."""
    start = m.current_period_start.ToDatetime(UTC)
    return Subscription(
        id=m.id,
        user_id=m.user_id,
        plan_id=m.plan_id,
        payment_method_id=m.payment_method_id,
        state=_STATE_FROM_PROTO[m.state],
        provider=m.provider,
        billing_anchor=start,
        current_period_start=start,
        current_period_end=m.current_period_end.ToDatetime(UTC),
        create_time=m.create_time.ToDatetime(UTC),
        update_time=m.update_time.ToDatetime(UTC),
        trial_end=_time_or_none(m.trial_end, m.HasField("trial_end")),
        cancel_at_period_end=m.cancel_at_period_end,
        pending_plan_id=m.pending_plan_id,
        latest_payment_id=m.latest_payment_id,
        failed_attempts=m.failed_attempts,
        next_retry_time=_time_or_none(m.next_retry_time, m.HasField("next_retry_time")),
        end_time=_time_or_none(m.end_time, m.HasField("end_time")),
        end_reason=m.end_reason,
        provider_subscription_id=m.provider_subscription_id,
    )


encode_plan = encoder(plan_to_proto)
decode_plan = decoder(pb.Plan.FromString, plan_from_proto)
encode_subscription = encoder(subscription_to_proto)
decode_subscription = decoder(pb.Subscription.FromString, subscription_from_proto)


def subscription_event_envelope(
    event: SubscriptionEvent, subscription: Subscription
) -> events_pb2.EventEnvelope:
    """The envelope for `event`, carrying `subscription` as it is after the change."""
    envelope, body = new_envelope(event, "subscription", event.subscription_id, _EVENT_FIELDS)
    body.subscription.CopyFrom(subscription_to_proto(subscription))
    if event.payment_id:
        body.payment_id = event.payment_id
    return envelope
