"""The Stripe provider against localstripe, for the service tests that use Stripe."""

from __future__ import annotations

from dataclasses import replace

import pytest
import stripe

from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResiliencePolicy,
    ResilientProvider,
)
from server.adapters.providers.stripe_provider import StripeProvider
from server.service.dependencies import Dependencies

STRIPE_API_KEY = "sk_test_payments"


@pytest.fixture
def stripe_deps(deps: Dependencies, localstripe_url: str) -> Dependencies:
    policy = ResiliencePolicy(attempts=2, backoff_initial_s=0.01, call_timeout_s=5)
    provider = ResilientProvider(
        StripeProvider(STRIPE_API_KEY, localstripe_url), policy, CircuitBreaker(5, 30)
    )
    return replace(deps, provider=provider, simulator=None)


@pytest.fixture
def stripe_client(localstripe_url: str) -> stripe.StripeClient:
    """Stripe as its dashboard (or a test) would call it, behind the service's back."""
    return stripe.StripeClient(
        STRIPE_API_KEY, base_addresses={"api": localstripe_url}, http_client=stripe.HTTPXClient()
    )
