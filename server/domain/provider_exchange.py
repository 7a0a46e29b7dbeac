"""One request to the provider and its answer, kept for support (sealed at rest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.domain.ids import IdKind

PROVIDER_EXCHANGE_ID = IdKind("pxc")


@dataclass(frozen=True, slots=True)
class ProviderExchange:
    id: str
    create_time: datetime
    provider: str
    method: str
    path: str
    status_code: int
    # Ours, when the request or answer names it (metadata.payment_id).
    payment_id: str
    provider_payment_id: str
    provider_refund_id: str
    # Scrubbed JSON of the request parameters and of the answer.
    request_body: str
    response_body: str
