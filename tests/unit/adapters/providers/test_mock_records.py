"""The mock's stored bodies are what `dataclasses.asdict` makes of its records."""

from __future__ import annotations

from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from server.adapters.providers.mock import _Intent, record_body
from server.domain.payment import CaptureMethod, Failure
from server.service.provider import (
    ProviderPayment,
    ProviderRefund,
    ProviderRefundStatus,
    ProviderStatus,
)

failures = st.none() | st.builds(Failure, st.text(), st.text())
intents = st.builds(
    _Intent,
    provider_payment_id=st.text(),
    payment_id=st.text(),
    amount=st.integers(),
    capture_method=st.sampled_from(CaptureMethod),
    payment_method_id=st.text(),
    status=st.sampled_from(ProviderStatus),
    amount_received=st.integers(),
    failure=failures,
    authenticated=st.booleans(),
    amount_refunded=st.integers(),
)
payments = st.builds(
    ProviderPayment,
    st.text(),
    st.sampled_from(ProviderStatus),
    st.integers(),
    failures,
    st.text(),
)
refunds = st.builds(ProviderRefund, st.text(), st.sampled_from(ProviderRefundStatus), failures)


@given(st.one_of(intents, payments, refunds))
def test_a_records_body_is_its_asdict(record: _Intent | ProviderPayment | ProviderRefund) -> None:
    assert record_body(record) == asdict(record)


def test_a_failure_is_stored_as_its_fields() -> None:
    reply = ProviderPayment("pi_1", ProviderStatus.FAILED, 0, Failure("card_declined", "No."))
    assert record_body(reply) == {
        "provider_payment_id": "pi_1",
        "status": ProviderStatus.FAILED,
        "amount_received": 0,
        "failure": {"code": "card_declined", "message": "No."},
        "client_secret": "",
    }
