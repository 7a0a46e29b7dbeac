"""The provider's requests and answers, kept per payment and refund through localstripe:
secrets and client secrets removed, sealed with AES-GCM, keys rotated by id."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.provider_exchange_log import SqlExchangeLog
from server.adapters.db.tables import provider_exchanges
from server.adapters.providers.exchange_redaction import REMOVED, scrub
from server.adapters.providers.recording_http import RecordingHTTPXClient
from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResilientProvider,
)
from server.adapters.providers.stripe_provider import StripeProvider
from server.adapters.sealing import KeyRing, KeyRingError
from server.config import ResiliencePolicy
from server.domain.errors import FailedPrecondition
from server.service.audit.provider_exchanges import list_provider_exchanges
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.refunds.commands import create_refund
from tests.integration.service.payments.test_stripe_payments import API_KEY, create
from tests.integration.service.refunds.test_commands import CALLER, refund


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _recording(deps: Dependencies, engine: AsyncEngine, keys: KeyRing, url: str) -> Dependencies:
    log = SqlExchangeLog(engine, keys)
    client = RecordingHTTPXClient(log.record, 5)
    policy = ResiliencePolicy(attempts=2, backoff_initial_s=0.01, call_timeout_s=5)
    provider = ResilientProvider(
        StripeProvider(API_KEY, url, http_client=client), policy, CircuitBreaker(5, 30)
    )
    return replace(deps, provider=provider, simulator=None, exchange_log=log)


async def test_exchanges_are_kept_scrubbed_sealed_and_readable_after_rotation(
    deps: Dependencies, engine: AsyncEngine, localstripe_url: str
) -> None:
    old = KeyRing.parse(f"k1:{_key()}")
    assert old is not None
    recording = _recording(deps, engine, old, localstripe_url)
    payment = (await create_payment(recording, CALLER, create(901))).resource
    assert payment.provider_payment_id.startswith("pi_")

    # Rotation: a new current key; the old one stays listed for what it sealed.
    new = KeyRing.parse(f"k2:{_key()},k1:{base64.b64encode(old.keys['k1']).decode()}")
    assert new is not None
    rotated = _recording(deps, engine, new, localstripe_url)
    refunded = (
        await create_refund(rotated, CALLER, refund(payment.id, "r-901", 300, "EUR"))
    ).resource

    exchanges = await list_provider_exchanges(rotated, payment.id)
    paths = [(e.method, e.path) for e in exchanges]
    assert ("POST", "/v1/payment_intents") in paths
    assert ("POST", "/v1/refunds") in paths
    created = next(e for e in exchanges if e.path == "/v1/payment_intents")
    answer = json.loads(created.response_body)
    assert answer["id"] == payment.provider_payment_id
    assert answer["client_secret"] == REMOVED
    assert json.loads(created.request_body)["metadata[payment_id]"] == payment.id
    assert created.payment_id == payment.id
    refund_exchange = next(e for e in exchanges if e.path == "/v1/refunds")
    assert refund_exchange.provider_refund_id == refunded.provider_refund_id
    assert refund_exchange.provider_payment_id == payment.provider_payment_id

    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(provider_exchanges))).all()
    assert {row.key_id for row in rows} == {"k1", "k2"}
    for row in rows:
        # At rest nothing of the bodies is readable.
        assert b"client_secret" not in row.sealed_body
        assert payment.provider_payment_id.encode() not in row.sealed_body

    # Without the old key its exchanges are listed, their bodies not opened.
    only_new = KeyRing(dict(new.keys), "k2")
    del only_new.keys["k1"]
    forgetful = replace(rotated, exchange_log=SqlExchangeLog(engine, only_new))
    listed = await list_provider_exchanges(forgetful, payment.id)
    assert any(e.request_body == "" for e in listed)
    assert any(e.request_body != "" for e in listed)


async def test_not_kept_without_keys(deps: Dependencies) -> None:
    with pytest.raises(FailedPrecondition) as off:
        await list_provider_exchanges(deps, "pay_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert off.value.reason == "PROVIDER_LOG_DISABLED"


def test_scrub_removes_every_secret_wherever_it_is() -> None:
    data = {
        "client_secret": "pi_1_secret_2",
        "charges": {"data": [{"payment_method_details": {"card": {"number": "4242424242424242"}}}]},
        "next_action": {"use_stripe_sdk": {"stripe_js": "x", "ephemeral_key_secret": "ek"}},
        "card[number]": "4242424242424242",
        "card[cvc]": "123",
        "amount": 1000,
    }
    scrubbed = json.dumps(scrub(data))
    assert "4242" not in scrubbed
    assert "secret_2" not in scrubbed
    assert "123" not in scrubbed
    assert '"amount": 1000' in scrubbed


def test_key_lists_are_checked() -> None:
    assert KeyRing.parse("") is None
    with pytest.raises(KeyRingError):
        KeyRing.parse("k1:short")
    with pytest.raises(KeyRingError):
        KeyRing.parse(f"k1:{_key()},k1:{_key()}")
