"""Stripe PaymentIntents, Customers and PaymentMethods through the official SDK's async client.

Every write carries an Idempotency-Key derived from our payment and attempt.
Errors are sorted three ways: card errors are answers (a FAILED payment with
a customer-safe message), invalid requests are refusals (ProviderRejected),
and everything that may succeed on a repeat is TransientProviderError for
the resilience layer to retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from functools import partial
from typing import Any, TypeVar

import stripe

from server.adapters.providers.resilience import TransientProviderError
from server.domain.payment import CaptureMethod, Failure
from server.domain.payment_method import BillingDetails
from server.service.provider import (
    CreateAtProvider,
    PaymentMethodDeclined,
    ProviderPayment,
    ProviderPaymentMethod,
    ProviderRefund,
    ProviderRefundStatus,
    ProviderRejected,
    ProviderStatus,
)

T = TypeVar("T")

# Messages safe to show a customer, by Stripe decline code; Stripe's own text is not shown.
SAFE_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "incorrect_number": "Your card number is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again.",
    "authentication_required": "Your bank needs you to authenticate this payment.",
    "payment_intent_authentication_failure": "The card's authentication failed.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "fraudulent": "Your card was declined.",
}
DEFAULT_SAFE_MESSAGE = "Your card was declined."
_STATUSES = {status.value: status for status in ProviderStatus}
# Stripe's refund statuses; requires_action (some bank transfers) waits like pending.
_REFUND_STATUSES = {status.value: status for status in ProviderRefundStatus} | {
    "requires_action": ProviderRefundStatus.PENDING
}
# Stripe's parameter names, as our request fields.
_FIELDS = {"payment_method": "payment_method_id", "amount": "amount", "currency": "amount"}


def failure_from(code: str | None, decline_code: str | None) -> Failure:
    reason = decline_code or code or "card_declined"
    return Failure(reason, SAFE_MESSAGES.get(reason, DEFAULT_SAFE_MESSAGE))


def _amount_received(data: Mapping[str, Any]) -> int:
    if data.get("amount_received") is not None:
        return int(data["amount_received"])
    charge = data.get("latest_charge")
    if isinstance(charge, dict) and charge.get("captured"):
        if charge.get("amount_captured") is not None:
            return int(charge["amount_captured"])
        return int(charge["amount"]) - int(charge.get("amount_refunded") or 0)
    return 0


def view(intent: stripe.PaymentIntent) -> ProviderPayment:
    return view_data(intent.to_dict())


def view_data(data: Mapping[str, Any]) -> ProviderPayment:
    """A PaymentIntent as a plain mapping (an SDK object's, or a webhook's data.object)."""
    status = _STATUSES.get(str(data.get("status")), ProviderStatus.PROCESSING)
    failure = None
    error = data.get("last_payment_error")
    if status is ProviderStatus.REQUIRES_PAYMENT_METHOD and isinstance(error, dict):
        # Stripe sends a declined intent back for another method; for us it failed.
        status = ProviderStatus.FAILED
        failure = failure_from(error.get("code"), error.get("decline_code"))
    return ProviderPayment(
        provider_payment_id=str(data["id"]),
        status=status,
        amount_received=_amount_received(data) if status is ProviderStatus.SUCCEEDED else 0,
        failure=failure,
        client_secret=str(data.get("client_secret") or ""),
    )


def _our_payment_id(intent: stripe.PaymentIntent) -> str:
    return str(intent.metadata.to_dict().get("payment_id", "")) if intent.metadata else ""


def refund_view(refund: stripe.Refund) -> ProviderRefund:
    reason = getattr(refund, "failure_reason", None)
    return refund_data_view({"id": refund.id, "status": refund.status, "failure_reason": reason})


def refund_data_view(data: Mapping[str, Any]) -> ProviderRefund:
    """A Stripe refund, from the SDK or from a webhook event's JSON."""
    status = _REFUND_STATUSES.get(str(data.get("status") or ""), ProviderRefundStatus.PENDING)
    failure = None
    if status is ProviderRefundStatus.FAILED:
        reason = data.get("failure_reason") or "refund_failed"
        failure = Failure(str(reason), "The refund could not be completed.")
    return ProviderRefund(str(data["id"]), status, failure)


def method_view(method: stripe.PaymentMethod) -> ProviderPaymentMethod:
    data = method.to_dict()
    card = data.get("card") or {}
    return ProviderPaymentMethod(
        provider_payment_method_id=str(data["id"]),
        type=str(data.get("type") or ""),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
    )


class CardDeclined(Exception):
    def __init__(self, failure: Failure, provider_payment_id: str = "") -> None:
        super().__init__(failure.code)
        self.failure = failure
        # The PaymentIntent the decline happened on, when Stripe's error names it.
        self.provider_payment_id = provider_payment_id


async def translated(call: Callable[[], Awaitable[T]]) -> T:
    """Run one SDK call, turning its errors into ours."""
    try:
        return await call()
    except stripe.CardError as error:
        failure = failure_from(error.code, getattr(error, "decline_code", None))
        intent = getattr(getattr(error, "error", None), "payment_intent", None)
        raise CardDeclined(failure, str(getattr(intent, "id", "") or "")) from None
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.IdempotencyError) as error:
        raise TransientProviderError(type(error).__name__) from error
    except stripe.InvalidRequestError as error:
        raise ProviderRejected(
            error.user_message or "the provider refused the request",
            field=_FIELDS.get(error.param or "", ""),
            code=error.code or "invalid_request",
        ) from None
    except stripe.StripeError as error:
        # 5xx, or 401/403 (our credentials are wrong): either way our callers see
        # an outage, and the breaker should hear of it.
        raise TransientProviderError(f"{type(error).__name__} {error.http_status}") from error


class StripeProvider:
    name = "stripe"
    issues_client_secrets = True

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        timeout_s: float = 10.0,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            # A recording client keeps what the provider was asked and answered.
            http_client=http_client or stripe.HTTPXClient(timeout=timeout_s),
            # Retries are ours (resilience.py), bounded and visible to the breaker.
            max_network_retries=0,
        )
        self._intents = self._client.v1.payment_intents
        self._customers = self._client.v1.customers
        self._methods = self._client.v1.payment_methods
        self._refunds = self._client.v1.refunds

    def ensure_available(self) -> None:
        """The resilience layer keeps the breaker."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        params: dict[str, Any] = {
            "amount": request.amount.minor_units,
            "currency": request.amount.currency_code.lower(),
            "capture_method": "manual"
            if request.capture_method is CaptureMethod.MANUAL
            else "automatic",
            "payment_method_types": ["card"],
            "metadata": {"payment_id": request.payment_id, "order_id": request.order_id},
        }
        if request.payment_method_id:
            params["payment_method"] = request.payment_method_id
        if request.description:
            params["description"] = request.description
        if request.customer_id:
            params["customer"] = request.customer_id
        if request.confirm:
            params["confirm"] = True
        try:
            intent = await translated(
                lambda: self._intents.create_async(
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": idempotency_key},
                )
            )
        except CardDeclined as declined:
            # Declined while confirming: the intent exists. Stripe's error names it; where
            # an error does not (localstripe), it is found by our payment id.
            provider_payment_id = declined.provider_payment_id
            if not provider_payment_id:
                found = await self.find_payment(request.payment_id)
                provider_payment_id = found.provider_payment_id if found else ""
            return ProviderPayment(provider_payment_id, ProviderStatus.FAILED, 0, declined.failure)
        return view(intent)

    async def confirm_payment(
        self, provider_payment_id: str, payment_method_id: str, idempotency_key: str
    ) -> ProviderPayment:
        # Read first: after 3-D Secure, or when a crashed attempt is resumed, the
        # intent may have moved on by itself and must not be confirmed again.
        current = await self._retrieve(provider_payment_id)
        status = current.to_dict().get("status")
        if status not in ("requires_confirmation", "requires_payment_method"):
            return view(current)
        params: dict[str, Any] = {}
        if payment_method_id and payment_method_id != current.to_dict().get("payment_method"):
            params["payment_method"] = payment_method_id
        try:
            intent = await translated(
                lambda: self._intents.confirm_async(
                    provider_payment_id,
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": idempotency_key},
                )
            )
        except CardDeclined as declined:
            after = view(await self._retrieve(provider_payment_id))
            if after.status is ProviderStatus.FAILED:
                return after
            return ProviderPayment(provider_payment_id, ProviderStatus.FAILED, 0, declined.failure)
        return view(intent)

    async def capture_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderPayment:
        intent = await translated(
            lambda: self._intents.capture_async(
                provider_payment_id,
                {"amount_to_capture": amount},
                {"idempotency_key": idempotency_key},
            )
        )
        return view(intent)

    async def cancel_payment(
        self, provider_payment_id: str, idempotency_key: str
    ) -> ProviderPayment:
        intent = await translated(
            lambda: self._intents.cancel_async(
                provider_payment_id, {}, {"idempotency_key": idempotency_key}
            )
        )
        return view(intent)

    async def refund_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderRefund:
        refund = await translated(
            lambda: self._refunds.create_async(
                {
                    "payment_intent": provider_payment_id,
                    "amount": amount,
                    # Tells our refunds from those made in Stripe's dashboard (webhooks).
                    "metadata": {"idempotency_key": idempotency_key},
                },
                {"idempotency_key": idempotency_key},
            )
        )
        return refund_view(refund)

    async def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund:
        return refund_view(
            await translated(lambda: self._refunds.retrieve_async(provider_refund_id))
        )

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment:
        return view(await self._retrieve(provider_payment_id))

    async def find_payment(self, payment_id: str) -> ProviderPayment | None:
        # Search is eventually consistent (about a minute): callers ask only about
        # rows older than that.
        try:
            found = await translated(
                lambda: self._intents.search_async(
                    {"query": f"metadata['payment_id']:'{payment_id}'", "limit": 1}
                )
            )
            intents = list(found.data)
        except ProviderRejected:
            intents = await self._listed(payment_id)
        return view(intents[0]) if intents else None

    async def _listed(self, payment_id: str) -> list[stripe.PaymentIntent]:
        """No search API (localstripe): every intent, a page at a time, by its metadata.

        Every page, not the first only: localstripe lists the oldest first.
        """
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = await translated(partial(self._intents.list_async, params))  # type: ignore[arg-type]
            found = [i for i in page.data if _our_payment_id(i) == payment_id]
            if found or not page.has_more or not page.data:
                return found
            params = {"limit": 100, "starting_after": page.data[-1].id}

    async def _retrieve(self, provider_payment_id: str) -> stripe.PaymentIntent:
        return await translated(lambda: self._intents.retrieve_async(provider_payment_id))

    async def ensure_customer(self, user_id: str, idempotency_key: str) -> str:
        # Only metadata: localstripe refuses parameters it does not know.
        customer = await translated(
            lambda: self._customers.create_async(
                {"metadata": {"user_id": user_id}}, {"idempotency_key": idempotency_key}
            )
        )
        return str(customer.id)

    async def attach_payment_method(
        self, provider_payment_method_id: str, customer_id: str, idempotency_key: str
    ) -> ProviderPaymentMethod:
        try:
            method = await translated(
                lambda: self._methods.attach_async(
                    provider_payment_method_id,
                    {"customer": customer_id},
                    {"idempotency_key": idempotency_key},
                )
            )
        except CardDeclined as declined:
            raise PaymentMethodDeclined(declined.failure) from None
        attached = method_view(method)
        if attached.type != "card":
            # We save cards only; leave nothing attached that we keep no record of.
            await self.detach_payment_method(
                attached.provider_payment_method_id, f"{idempotency_key}:undo"
            )
            raise ProviderRejected(
                f"only cards can be saved, not {attached.type or 'this type'}",
                field="payment_method_id",
                code="payment_method_unsupported",
            )
        return attached

    async def update_payment_method_billing(
        self, provider_payment_method_id: str, billing: BillingDetails, idempotency_key: str
    ) -> None:
        await translated(
            lambda: self._methods.update_async(
                provider_payment_method_id,
                # Every field, empty ones as "" (which clears them): Stripe gets exactly our record.
                {"billing_details": asdict(billing)},  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )

    async def detach_payment_method(
        self, provider_payment_method_id: str, idempotency_key: str
    ) -> None:
        try:
            await translated(
                lambda: self._methods.detach_async(
                    provider_payment_method_id, {}, {"idempotency_key": idempotency_key}
                )
            )
        except ProviderRejected:
            # Stripe refuses to detach twice; an earlier attempt may have got through.
            current = await translated(
                lambda: self._methods.retrieve_async(provider_payment_method_id)
            )
            if current.to_dict().get("customer") is not None:
                raise
