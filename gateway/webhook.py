"""POST /webhooks/stripe: HTTP in, the service call, HTTP out; nothing else.

Checks, cheapest first, and nothing is stored for a request that fails one:
415 unless the body is JSON; 413 over MAX_BODY_BYTES (announced or streamed);
400 without a valid Stripe-Signature on the raw body, or when the verified
body is not an event. Then the service stores and applies the event: 200
(also for duplicates, unknown payments and types, and for events whose content
can never be applied: those are stored as rejected for an operator), or 500
only when applying failed on our side (an outage), so that Stripe retries. A
client that goes away mid-body is counted, not logged as an error. No response
or log line carries the secret or the payload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from gateway.signature import SignatureError, verify_signature
from server.observability.metrics import webhook_intake
from server.service.apply_webhook_event import (
    MalformedWebhookEvent,
    WebhookApplyFailed,
    parse_event,
    receive_webhook_event,
    reject_unreadable_body,
)
from server.service.dependencies import Dependencies
from server.service.webhook_rejections import MAX_DEPTH, TooDeep, storable_type

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_HEADER = "stripe-signature"


class _TooLarge(Exception):
    pass


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json"


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it grows past `limit` whatever Content-Length said."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class StripeWebhookEndpoint:
    def __init__(
        self,
        deps: Dependencies,
        secrets: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        self._deps = deps
        self._secrets = tuple(secrets)
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    async def handle(self, request: Request) -> Response:
        response, event_type, result = await self._intake(request)
        webhook_intake.add(1, {"type": event_type, "result": result})
        return response

    async def _intake(self, request: Request) -> tuple[Response, str, str]:
        """The response, the event type ("unknown" until parsed) and the result to count."""
        unknown = "unknown"
        if not _is_json(request.headers.get("content-type", "")):
            return _error(415, "the body must be application/json"), unknown, "unsupported_media"
        announced = request.headers.get("content-length")
        if announced is not None:
            if not announced.isascii() or not announced.isdigit():
                return _error(400, "invalid Content-Length"), unknown, "bad_request"
            if int(announced) > self._max_body_bytes:
                return _error(413, "the body is too large"), unknown, "too_large"
        try:
            body = await _read_body(request, self._max_body_bytes)
        except _TooLarge:
            return _error(413, "the body is too large"), unknown, "too_large"
        except ClientDisconnect:
            # Nobody is left to answer; the response is never sent.
            return Response(status_code=499), unknown, "client_disconnected"
        try:
            verify_signature(
                body, request.headers.get(SIGNATURE_HEADER), self._secrets, now=self._clock()
            )
        except SignatureError as error:
            _log.warning("webhook refused: %s", error)
            return _error(400, "invalid signature"), unknown, "invalid_signature"
        try:
            event = parse_event(body)
        except TooDeep:
            reason = f"the body nests deeper than {MAX_DEPTH} levels"
            outcome = await reject_unreadable_body(self._deps, body.decode(), reason)
            return self._received(outcome.value), unknown, outcome.value
        except MalformedWebhookEvent:
            _log.warning("webhook refused: a signed body that is not an event")
            return _error(400, "the body is not a Stripe event"), unknown, "malformed"
        try:
            outcome = await receive_webhook_event(self._deps, event)
        except WebhookApplyFailed:
            failed = _error(500, "the event could not be applied; it is kept for a retry")
            return failed, storable_type(event.type), "apply_failed"
        return self._received(outcome.value), storable_type(event.type), outcome.value

    @staticmethod
    def _received(outcome: str) -> Response:
        return JSONResponse({"received": True, "outcome": outcome})
