"""JSON log lines: fields, trace ids, payment id, and masking of secrets and card numbers."""

from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from server.observability import context
from server.observability.logs import JsonFormatter, mask

SECRETS = [
    "sk_test_51H8xYzAbCdEfGh",
    "sk_live_51H8xYzAbCdEfGh",
    "rk_live_51H8xYzAbCdEfGh",
    "whsec_5Yq1bNnlBqh0Cx9mVt2Lz+AbCd=",
    "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
    "seti_1Mm8s8LkdIwHu7ix_secret_NXDICkPqPeiBTAFqWmkbff09lRmSVXe",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcmRlcnMifQ.c2lnbmF0dXJl",
]


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord(
        {"name": "test", "levelno": logging.INFO, "levelname": "INFO", "msg": message}
    )
    made.args = args
    made.__dict__.update(extra)
    return made


def test_a_line_is_json_with_time_level_logger_message() -> None:
    line = json.loads(JsonFormatter().format(record("payment %s", "pay_1")))
    assert line["level"] == "INFO"
    assert line["logger"] == "test"
    assert line["message"] == "payment pay_1"
    assert line["timestamp"].endswith("+00:00")
    assert "trace_id" not in line


def test_a_line_in_a_span_carries_its_trace_and_span_ids_and_the_payment() -> None:
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    token = context.payment_id.set("pay_01ABC")
    try:
        with trace.use_span(span):
            line = json.loads(JsonFormatter().format(record("hello")))
    finally:
        context.payment_id.reset(token)
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == "00f067aa0ba902b7"
    assert line["payment_id"] == "pay_01ABC"


def test_secrets_in_the_message_extras_and_traceback_are_masked() -> None:
    try:
        raise ValueError(f"bad key {SECRETS[0]}")
    except ValueError:
        import sys

        failing = record("calling with %s", SECRETS[1], note=SECRETS[3])
        failing.exc_info = sys.exc_info()
    text = JsonFormatter().format(failing)
    for secret in SECRETS[:4]:
        assert secret not in text
    assert "sk_live_***" in text


def test_each_secret_shape_is_masked() -> None:
    for secret in SECRETS:
        masked = mask(f"token {secret} end")
        assert secret not in masked
        assert masked.startswith("token ")
        assert masked.endswith(" end")
    assert mask("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"


@given(
    digits=st.text(alphabet="0123456789", min_size=13, max_size=19),
    separator=st.sampled_from(["", " ", "-"]),
    before=st.text(alphabet="abc :=", max_size=5),
    after=st.text(alphabet="abc :=", max_size=5),
)
def test_card_like_digit_runs_keep_only_their_last_four(
    digits: str, separator: str, before: str, after: str
) -> None:
    grouped = separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    masked = mask(f"{before}{grouped}{after}")
    assert digits not in masked.replace(separator, "") if separator else digits not in masked
    assert masked.endswith(f"{digits[-4:]}{after}")
    assert "***" in masked


@given(st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_short_numbers_stay(digits: str) -> None:
    assert mask(f"amount {digits} cents") == f"amount {digits} cents"
