"""Stripe Billing: plans and subscriptions Stripe charges itself, through the official SDK.

Our plan is created at Stripe with our plan id as its id, so creating it again
is harmless. The subscription's invoices charge the customer's invoice default
payment method (localstripe takes no `default_payment_method` on a
subscription). Every call goes through the resilience layer of the payment calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from server.adapters.providers.resilience import ResilientProvider
from server.adapters.providers.stripe_provider import translated
from server.domain.money import Money
from server.service.provider import ProviderRejected, ProviderSubscription


def subscription_view(data: Mapping[str, Any]) -> ProviderSubscription:
    """Our view of a Stripe subscription object (from the SDK or a webhook body)."""
    item: Mapping[str, Any] = {}
    items = data.get("items")
    if isinstance(items, Mapping) and items.get("data"):
        item = items["data"][0]
    # Newer API versions keep the period on the item only.
    start = data.get("current_period_start") or item.get("current_period_start") or 0
    end = data.get("current_period_end") or item.get("current_period_end") or 0
    return ProviderSubscription(
        provider_subscription_id=str(data.get("id", "")),
        status=str(data.get("status", "")),
        current_period_start=datetime.fromtimestamp(int(start), UTC),
        current_period_end=datetime.fromtimestamp(int(end), UTC),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
    )


class StripeBilling:
    def __init__(
        self, api_key: str, api_base: str | None, resilient: ResilientProvider, timeout_s: float
    ) -> None:
        client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.HTTPXClient(timeout=timeout_s),
            max_network_retries=0,
        )
        self._plans = client.v1.plans
        self._subscriptions = client.v1.subscriptions
        self._customers = client.v1.customers
        self._resilient = resilient

    async def ensure_plan(
        self, plan_id: str, name: str, price: Money, interval: str, interval_count: int
    ) -> str:
        try:
            return await self._resilient.run(lambda: self._retrieve_plan(plan_id))
        except ProviderRejected:
            pass  # not there yet
        params: Any = {
            "id": plan_id,
            "amount": price.minor_units,
            "currency": price.currency_code.lower(),
            "interval": interval.lower(),
            "interval_count": interval_count,
            "product": {"name": name},
        }
        created = await self._resilient.run(
            lambda: translated(
                lambda: self._plans.create_async(params, {"idempotency_key": f"{plan_id}:create"})
            )
        )
        return str(created.id)

    async def _retrieve_plan(self, plan_id: str) -> str:
        found = await translated(lambda: self._plans.retrieve_async(plan_id))
        return str(found.id)

    async def create_subscription(
        self,
        *,
        subscription_id: str,
        customer_id: str,
        provider_plan_id: str,
        provider_payment_method_id: str,
        trial_days: int,
        idempotency_key: str,
    ) -> ProviderSubscription:
        await self.set_payment_method(
            customer_id, provider_payment_method_id, f"{idempotency_key}:method"
        )
        params: Any = {
            "customer": customer_id,
            "items": [{"plan": provider_plan_id}],
            "metadata": {"subscription_id": subscription_id},
        }
        if trial_days:
            params["trial_period_days"] = trial_days
        created = await self._resilient.run(
            lambda: translated(
                lambda: self._subscriptions.create_async(
                    params, {"idempotency_key": idempotency_key}
                )
            )
        )
        return subscription_view(created.to_dict())

    async def set_payment_method(
        self, customer_id: str, provider_payment_method_id: str, idempotency_key: str
    ) -> None:
        params: Any = {"invoice_settings": {"default_payment_method": provider_payment_method_id}}
        await self._resilient.run(
            lambda: translated(
                lambda: self._customers.update_async(
                    customer_id, params, {"idempotency_key": idempotency_key}
                )
            )
        )

    async def set_cancel_at_period_end(
        self, provider_subscription_id: str, cancel: bool, idempotency_key: str
    ) -> ProviderSubscription:
        params: Any = {"cancel_at_period_end": cancel}
        updated = await self._resilient.run(
            lambda: translated(
                lambda: self._subscriptions.update_async(
                    provider_subscription_id, params, {"idempotency_key": idempotency_key}
                )
            )
        )
        return subscription_view(updated.to_dict())

    async def cancel_subscription(
        self, provider_subscription_id: str, idempotency_key: str
    ) -> ProviderSubscription:
        canceled = await self._resilient.run(
            lambda: translated(
                lambda: self._subscriptions.cancel_async(
                    provider_subscription_id, None, {"idempotency_key": idempotency_key}
                )
            )
        )
        return subscription_view(canceled.to_dict())
