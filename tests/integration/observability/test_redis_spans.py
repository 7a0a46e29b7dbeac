"""With tracing on, a rate-limit take on the real Redis is a child span of the call."""

from __future__ import annotations

import uuid

from server.adapters.rate_limit import RedisTokenBucket
from server.observability.tracing import instrument_redis, tracer
from tests.support.tracing import recording_spans

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_a_rate_limit_take_is_a_redis_span_under_the_call() -> None:
    spans = recording_spans()
    instrument_redis()
    bucket = RedisTokenBucket(REDIS_URL, rate=10, burst=10, prefix=f"test:{uuid.uuid4().hex}:")
    try:
        with tracer().start_as_current_span("payments.v1.PaymentService/CreatePayment") as call:
            # A missing Redis must fail the test, never fall back quietly: check it answered.
            assert await bucket.take("caller-1") == 0
    finally:
        await bucket.close()
    finished = spans.get_finished_spans()
    trace_id = call.get_span_context().trace_id
    redis_spans = [
        span
        for span in finished
        if span.attributes
        and span.attributes.get("db.system") == "redis"
        and span.context is not None
        and span.context.trace_id == trace_id
    ]
    assert redis_spans, [span.name for span in finished]
    assert all(span.parent is not None for span in redis_spans)
    # Keys are hashed callers; the statement attribute must not carry the caller id.
    assert all("caller-1" not in str(span.attributes) for span in redis_spans)
