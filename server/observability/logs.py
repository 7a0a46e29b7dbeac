"""One JSON line per log event, with trace ids and payment id, secrets masked.

The message, any `extra=` value and the traceback are masked as the line is
written, so nothing that slipped into them leaves the process: provider keys, webhook
secrets, client secrets, bearer tokens, JWTs and card-number-like digit runs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from server.observability.context import payment_id

MASK = "***"
_SECRETS = [
    # Stripe API keys (secret, restricted, publishable) and webhook endpoint secrets.
    (re.compile(r"\b(sk|rk|pk)_(live|test)_[0-9A-Za-z]+"), rf"\1_\2_{MASK}"),
    (re.compile(r"\bwhsec_[0-9A-Za-z+/=]+"), f"whsec_{MASK}"),
    # Client secrets: pi_..._secret_... (PaymentIntent), seti_..._secret_... (SetupIntent).
    (re.compile(r"\b((?:pi|seti)_[0-9A-Za-z]+)_secret_[0-9A-Za-z]+"), rf"\1_secret_{MASK}"),
    (re.compile(r"\bBearer\s+[0-9A-Za-z._~+/-]+=*", re.IGNORECASE), f"Bearer {MASK}"),
    (re.compile(r"\beyJ[0-9A-Za-z_-]*\.[0-9A-Za-z_-]+(?:\.[0-9A-Za-z_-]*)?"), f"jwt:{MASK}"),
]
# 13 to 19 digits, perhaps grouped by spaces or dashes: all but the last four go.
_CARD_LIKE = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


def _card(match: re.Match[str]) -> str:
    digits = [ch for ch in match.group(0) if ch.isdigit()]
    return f"{MASK}{''.join(digits[-4:])}"


def mask(text: str) -> str:
    """`text` with every secret and card-like number replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return _CARD_LIKE.sub(_card, text)


# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# uvicorn passes a copy of some messages with ANSI colour codes for its own formatter.
_DROPPED = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        current_payment = getattr(record, "payment_id", "") or payment_id.get()
        if current_payment:
            line["payment_id"] = current_payment
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _DROPPED and key not in line:
                line[key] = value if isinstance(value, int | float | bool) else mask(str(value))
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        # Ids (trace, span, payment) are ours and never masked: a hex id can hold 13 digits.
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO message` for a person at a terminal; masked like the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = f"{when} {record.levelname:<7} {mask(record.getMessage())}"
        current_payment = getattr(record, "payment_id", "") or payment_id.get()
        if current_payment:
            text += f" (payment {current_payment})"
        if record.exc_info:
            text += "\n" + mask(self.formatException(record.exc_info))
        return text


def configure_logging(level: str, *, text: bool = False) -> None:
    """Lines on stderr at `level` (PAYMENTS_LOG_LEVEL): JSON, or plain `text` for a person."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per provider HTTP request is noise; failures surface as our own logs.
    for chatty in ("httpx", "httpcore", "stripe", "grpc._cython.cygrpc", "aiosqlite"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
