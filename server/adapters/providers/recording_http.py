"""The Stripe SDK's HTTP client, telling a recorder about every exchange it makes.

The recorder gets the scrubbed request and answer; a recorder that fails is
logged and ignored: keeping the provider's words never stands in the way of money.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

from server.adapters.providers.exchange_redaction import scrub
from server.domain.provider_exchange import PROVIDER_EXCHANGE_ID, ProviderExchange

_log = logging.getLogger(__name__)
Recorder = Callable[[ProviderExchange], Awaitable[None]]


def _form(post_data: Any) -> dict[str, str]:
    if not post_data:
        return {}
    text = post_data.decode() if isinstance(post_data, bytes) else str(post_data)
    return dict(parse_qsl(text, keep_blank_values=True))


def _json(content: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(content)
    except ValueError:
        return {"unparsed_bytes": len(content)}
    return decoded if isinstance(decoded, dict) else {"value": decoded}


def _ids(path: str, request: dict[str, str], answer: dict[str, Any]) -> tuple[str, str, str]:
    """(our payment id, provider payment id, provider refund id) as far as they are named."""
    found = answer.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    payment_id = request.get("metadata[payment_id]") or str(metadata.get("payment_id") or "")
    provider_payment = provider_refund = ""
    kind, identifier = answer.get("object"), str(answer.get("id") or "")
    if kind == "payment_intent":
        provider_payment = identifier
    elif kind == "refund":
        provider_refund = identifier
        provider_payment = str(answer.get("payment_intent") or "")
    parts = path.strip("/").split("/")
    if not provider_payment and len(parts) >= 3 and parts[1] == "payment_intents":
        provider_payment = parts[2]
    if not provider_payment:
        provider_payment = request.get("payment_intent", "")
    return payment_id, provider_payment, provider_refund


def exchange_of(
    method: str, url: str, post_data: Any, status_code: int, content: bytes
) -> ProviderExchange:
    path = urlsplit(url).path
    request, answer = _form(post_data), _json(content)
    payment_id, provider_payment, provider_refund = _ids(path, request, answer)
    return ProviderExchange(
        id=PROVIDER_EXCHANGE_ID.new(),
        create_time=datetime.now(UTC),
        provider="stripe",
        method=method.upper(),
        path=path,
        status_code=status_code,
        payment_id=payment_id,
        provider_payment_id=provider_payment,
        provider_refund_id=provider_refund,
        request_body=json.dumps(scrub(request), sort_keys=True),
        response_body=json.dumps(scrub(answer), sort_keys=True),
    )


class RecordingHTTPXClient(stripe.HTTPXClient):
    def __init__(self, recorder: Recorder, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._recorder = recorder

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        content, status_code, response_headers = await super().request_async(
            method, url, headers, post_data
        )
        try:
            await self._recorder(exchange_of(method, url, post_data, status_code, content))
        except Exception as error:
            _log.warning("provider exchange not kept: %s", type(error).__name__)
        return content, status_code, response_headers
