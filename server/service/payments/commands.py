"""The PaymentService use cases that change a payment."""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from server.adapters.codec import decode_payment, encode_payment
from server.domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ProviderUnavailable,
    Unimplemented,
    Validator,
)
from server.domain.ids import PAYMENT_ID, PAYMENT_METHOD_ID, require_id
from server.domain.money import check_amount
from server.domain.payment import Failure, Payment, new_payment
from server.domain.payment_states import PaymentOp, PaymentState, next_state
from server.observability.context import about_payment
from server.observability.metrics import payment_outcomes
from server.service.dependencies import Dependencies
from server.service.payment_methods.queries import not_found, usable_method
from server.service.payments.at_provider import charge_key, registration
from server.service.payments.client_secrets import fetch_client_secret
from server.service.payments.provider_outcomes import apply_provider_outcome
from server.service.payments.requests import (
    MAX_REASON,
    CancelPayment,
    CapturePayment,
    ConfirmPayment,
    CreatePayment,
    SimulatePayment,
    check_payment_method,
    check_text,
    targeted,
    validate_create,
)
from server.service.pipeline.command import Command, Finishing, Kind, Outcome, Refusal, run
from server.service.pipeline.idempotency import Scope, optional_scope, scope_of
from server.service.provider import (
    ProviderPayment,
    ProviderRejected,
    ProviderStatus,
)
from server.service.unit_of_work import KeyRecord, LiveOrderConflict, StaleWrite, UnitOfWork

_log = logging.getLogger(__name__)
PAYMENTS: Kind[Payment] = Kind(encode_payment, decode_payment, lambda payment: payment.id)

_CHARGEABLE = frozenset(
    {
        PaymentState.REQUIRES_PAYMENT_METHOD,
        PaymentState.REQUIRES_CONFIRMATION,
        PaymentState.PROCESSING,
    }
)


async def _load(uow: UnitOfWork, payment_id: str) -> Payment:
    payment = await uow.payments.get(payment_id, for_update=True)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found", reason="PAYMENT_NOT_FOUND")
    return payment


def _apply(payment: Payment, result: ProviderPayment | None, now: datetime) -> None:
    if result is not None:
        apply_provider_outcome(payment, result, now)


# Apply the provider's answer to the payment.
Finish = Callable[[Payment, ProviderPayment | None, datetime], None]
# Record a refusal on the payment and say what the caller is told.
Refused = Callable[[Payment, ProviderRejected, datetime], Awaitable[Refusal]]
Prepare = Callable[[UnitOfWork, str | None], Awaitable[Payment]]
Act = Callable[[Payment], Awaitable[ProviderPayment | None]]


async def _save(uow: UnitOfWork, payment: Payment) -> Payment:
    """Save the payment unless someone else moved it meanwhile (then theirs stands)."""
    expected = payment.event_sequence - len(payment.pending_events)
    try:
        await uow.payments.save(payment, expected)
    except StaleWrite:
        # A webhook, the reconciler or a resumed attempt got there first.
        fresh = await uow.payments.get(payment.id, for_update=True)
        assert fresh is not None
        return fresh
    return payment


def _tell(payment: Payment, stage: str) -> None:
    """Tag the span and log lines with the payment; count and log each outcome."""
    if stage == "replayed":
        about_payment(payment.id, order_id=payment.order_id, outcome="replayed")
        return
    if stage == "prepared":
        about_payment(payment.id, order_id=payment.order_id, provider=payment.provider)
        return
    outcome = payment.state.value if stage == "recorded" else stage
    payment_outcomes.add(1, {"provider": payment.provider, "outcome": outcome})
    about_payment(payment.id, order_id=payment.order_id, provider=payment.provider, outcome=outcome)
    # One line per money-moving step: the payment's story in the logs, by trace and id.
    _log.info("payment %s: %s at %s", payment.id, outcome, payment.provider)


def _run(
    deps: Dependencies,
    scope: Scope | None,
    payment_id: str,
    prepare: Prepare,
    act: Act,
    finish: Finish = _apply,
    refused: Refused | None = None,
    fresh: Callable[[], Payment] | None = None,
) -> Awaitable[Outcome[Payment]]:
    """The pipeline, with what every payment command shares.

    `fresh` builds a new payment without reading anything: with it, and statements
    to write with, step 1 is one statement.
    """

    async def record(uow: UnitOfWork, payment: Payment, answer: ProviderPayment | None) -> Payment:
        finish(payment, answer, deps.clock.now())
        return await _save(uow, payment)

    async def refuse(payment: Payment, rejected: ProviderRejected) -> Refusal:
        return await (refused or _refused_at_provider)(payment, rejected, deps.clock.now())

    statements = deps.payment_statements
    quick_start = quick_record = None
    if statements is not None:

        async def quick_record(
            payment: Payment, answer: ProviderPayment | None, finishing: Finishing[Payment]
        ) -> Payment | None:
            finish(payment, answer, deps.clock.now())
            expected = payment.event_sequence - len(payment.pending_events)
            saved = await statements.save(payment, expected, finishing(payment))
            return payment if saved else None

        if fresh is not None:

            async def quick_start(
                key: KeyRecord, now: datetime, expire_time: datetime
            ) -> Payment | None:
                payment = fresh()
                started = await statements.start(key, now, expire_time, payment)
                return payment if started else None

    return run(
        deps,
        Command(
            scope=scope,
            kind=PAYMENTS,
            resource_id=payment_id,
            prepare=prepare,
            act=act,
            record=record,
            refused=refuse,
            secret=lambda answer: answer.client_secret if answer else "",
            replay_secret=partial(fetch_client_secret, deps),
            observe=_tell,
            quick_start=quick_start,
            quick_record=quick_record,
        ),
    )


async def _check_saved_method(
    deps: Dependencies, uow: UnitOfWork, payment_method_id: str, user_id: str
) -> None:
    """A saved method (pmt_...) must be the payer's own and still attached."""
    if PAYMENT_METHOD_ID.matches(payment_method_id):
        await usable_method(uow, payment_method_id, user_id, deps.provider.name)


async def _at_provider(deps: Dependencies, payment_method_id: str) -> tuple[str, str]:
    """The payment's method as the provider knows it: its own id, and a saved one's customer."""
    if not PAYMENT_METHOD_ID.matches(payment_method_id):
        return payment_method_id, ""
    async with deps.uow() as uow:
        saved = await uow.payment_methods.get(payment_method_id)
    if saved is None:
        raise not_found(payment_method_id)
    return saved.provider_payment_method_id, saved.provider_customer_id


async def _charge_at_provider(
    deps: Dependencies, payment: Payment, *, confirm: bool, resumed: bool = False
) -> ProviderPayment | None:
    """Register the payment at the provider if needed, then charge it if it is PROCESSING.

    Nothing is written before the provider answers: its id is recorded with the outcome.
    A crash before that leaves a PROCESSING row with a next check and no provider id,
    which the reconciler looks up at the provider by our payment id. A `resumed` attempt
    looks it up first too; the calls are keyed besides, so neither is ever repeated.
    """
    if payment.state not in _CHARGEABLE:
        return None  # settled meanwhile (by the reconciler, or a webhook)
    method_id, customer_id = await _at_provider(deps, payment.payment_method_id)
    if resumed and not payment.provider_payment_id:
        found = await deps.provider.find_payment(payment.id)
        if found is not None:
            payment.provider_payment_id = found.provider_payment_id
            if found.status is not ProviderStatus.REQUIRES_CONFIRMATION:
                return found
    if not payment.provider_payment_id:
        # A PROCESSING payment is created and charged in one call, under a key of its
        # own: a key is only ever used with the same parameters.
        charge = confirm and payment.state is PaymentState.PROCESSING
        created = await deps.provider.create_payment(
            registration(payment, method_id, customer_id, confirm=charge),
            idempotency_key=charge_key(payment) if charge else f"{payment.id}:create",
        )
        if charge and created.status is not ProviderStatus.REQUIRES_CONFIRMATION:
            return created
        now = deps.clock.now()
        payment.provider_payment_id = created.provider_payment_id
        payment.update_time = now
        if confirm and payment.state is not PaymentState.PROCESSING:
            payment.apply(PaymentOp.CONFIRM, now)
        if not confirm:
            return created
    if payment.state is PaymentState.PROCESSING:
        return await deps.provider.confirm_payment(
            payment.provider_payment_id,
            method_id,
            f"{payment.id}:{payment.event_sequence}:confirm",
        )
    return None


def _keeping(payment: Payment, error: DomainError) -> Refusal:
    """Tell the caller `error` and record the payment as the refusal left it."""

    async def keep(uow: UnitOfWork) -> None:
        # A copy, so a retried write still has the refusal's events to store.
        await _save(uow, copy.deepcopy(payment))

    return Refusal(error, keep)


async def _refused_at_provider(
    payment: Payment, rejected: ProviderRejected, now: datetime
) -> Refusal:
    """A payment the provider will not take fails, so the order can be paid another way."""
    payment.fail(now, Failure(rejected.code or "invalid_request", rejected.message))
    error = InvalidArgument(
        [FieldViolation(rejected.field or "payment_method_id", rejected.message)],
        reason="PROVIDER_REJECTED",
    )
    return _keeping(payment, error)


async def create_payment(
    deps: Dependencies, caller: str, command: CreatePayment
) -> Outcome[Payment]:
    amount = validate_create(command)
    capture_method = command.capture_method
    assert capture_method is not None
    scope = scope_of(caller, command.request_id, "CreatePayment", command.parameters())

    new_id = PAYMENT_ID.new()

    def fresh() -> Payment:
        payment = new_payment(
            payment_id=new_id,
            order_id=command.order_id,
            user_id=command.user_id,
            amount=amount,
            provider=deps.provider.name,
            capture_method=capture_method,
            payment_method_id=command.payment_method_id,
            description=command.description,
            metadata=dict(command.metadata),
            now=deps.clock.now(),
        )
        if command.confirm:
            # PROCESSING before the provider hears of it: a row the database fails to
            # finish (no provider id yet) is one the reconciler checks, and resolves.
            payment.apply(PaymentOp.CONFIRM, deps.clock.now())
        return payment

    resumed = False

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Payment:
        nonlocal resumed
        if resume_id is not None:
            resumed = True
            return await _load(uow, resume_id)
        await _check_saved_method(deps, uow, command.payment_method_id, command.user_id)
        payment = fresh()
        await uow.payments.add(payment)
        return payment

    async def act(payment: Payment) -> ProviderPayment | None:
        return await _charge_at_provider(deps, payment, confirm=command.confirm, resumed=resumed)

    try:
        # A saved method is checked against the payer by a read: that takes the long way.
        quick = None if PAYMENT_METHOD_ID.matches(command.payment_method_id) else fresh
        return await _run(deps, scope, new_id, prepare, act, fresh=quick)
    except LiveOrderConflict:
        async with deps.uow() as uow:
            live = await uow.payments.find_live_by_order(command.user_id, command.order_id)
        raise AlreadyExists(
            f"order {command.order_id} already has a live payment",
            reason="ORDER_HAS_LIVE_PAYMENT",
            metadata={"payment_id": live.id if live else "", "order_id": command.order_id},
        ) from None


async def confirm_payment(
    deps: Dependencies, caller: str, command: ConfirmPayment
) -> Outcome[Payment]:
    validator = targeted(PAYMENT_ID, command.id, command.request_id)
    check_payment_method(validator, command.payment_method_id)
    validator.raise_if_any()
    scope = optional_scope(
        caller,
        command.request_id,
        "ConfirmPayment",
        {"id": command.id, "payment_method_id": command.payment_method_id},
    )

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Payment:
        payment = await _load(uow, command.id)
        if resume_id is not None:
            return payment
        next_state(payment.state, PaymentOp.CONFIRM)
        if command.payment_method_id:
            payment.payment_method_id = command.payment_method_id
        await _check_saved_method(deps, uow, payment.payment_method_id, payment.user_id)
        if not payment.payment_method_id:
            raise InvalidArgument(
                [FieldViolation("payment_method_id", "is required: the payment has none yet")]
            )
        expected = payment.event_sequence
        payment.apply(PaymentOp.CONFIRM, deps.clock.now())
        await uow.payments.save(payment, expected)
        return payment

    async def act(payment: Payment) -> ProviderPayment | None:
        return await _charge_at_provider(deps, payment, confirm=True, resumed=True)

    return await _run(deps, scope, command.id, prepare, act)


async def capture_payment(
    deps: Dependencies, caller: str, command: CapturePayment
) -> Outcome[Payment]:
    validator = targeted(PAYMENT_ID, command.id, command.request_id)
    requested = command.amount_to_capture
    if requested is not None:
        check_amount(validator, "amount_to_capture", requested.currency_code, requested.minor_units)
    validator.raise_if_any()
    scope = optional_scope(
        caller,
        command.request_id,
        "CapturePayment",
        {
            "id": command.id,
            "amount": [requested.currency_code, requested.minor_units] if requested else None,
        },
    )

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Payment:
        payment = await _load(uow, command.id)
        if resume_id is not None:
            return payment
        if requested is not None:
            _check_capturable(payment, requested.currency_code, requested.minor_units)
        expected = payment.event_sequence
        payment.apply(PaymentOp.CAPTURE, deps.clock.now())
        await uow.payments.save(payment, expected)
        return payment

    async def act(payment: Payment) -> ProviderPayment | None:
        if payment.state is not PaymentState.PROCESSING:
            return None
        amount = requested.minor_units if requested else payment.amount.minor_units
        key = f"{payment.id}:{payment.event_sequence}:capture"
        return await deps.provider.capture_payment(payment.provider_payment_id, amount, key)

    return await _run(deps, scope, command.id, prepare, act, refused=_refused_by_truth(deps))


def _check_capturable(payment: Payment, currency_code: str, minor_units: int) -> None:
    validator = Validator()
    validator.check(
        currency_code == payment.amount.currency_code,
        "amount_to_capture.currency_code",
        f"must be the payment's currency, {payment.amount.currency_code}",
    )
    validator.check(
        minor_units <= payment.amount.minor_units,
        "amount_to_capture.minor_units",
        f"must be at most the authorized {payment.amount.minor_units}",
    )
    if validator.violations:
        raise InvalidArgument(validator.violations, reason="AMOUNT_NOT_CAPTURABLE")


def _refused_by_truth(deps: Dependencies) -> Refused:
    """After a refused capture or cancel, the payment takes the provider's word for its state."""

    async def refused(payment: Payment, rejected: ProviderRejected, now: datetime) -> Refusal:
        error = FailedPrecondition(
            f"the provider refused: {rejected.message}", reason="PROVIDER_REJECTED"
        )
        try:
            truth = await deps.provider.retrieve_payment(payment.provider_payment_id)
        except (ProviderRejected, ProviderUnavailable):
            # Its state is unknown: it stays where it waits for the reconciler, and a retry
            # with the same request_id may resume at once.
            return Refusal(error, settled=False)
        apply_provider_outcome(payment, truth, now)
        return _keeping(payment, error)

    return refused


async def cancel_payment(
    deps: Dependencies, caller: str, command: CancelPayment
) -> Outcome[Payment]:
    validator = targeted(PAYMENT_ID, command.id, command.request_id)
    check_text(validator, "reason", command.reason, MAX_REASON)
    validator.raise_if_any()
    scope = optional_scope(
        caller, command.request_id, "CancelPayment", {"id": command.id, "r": command.reason}
    )

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Payment:
        del resume_id
        payment = await _load(uow, command.id)
        if payment.state is not PaymentState.CANCELED:
            next_state(payment.state, PaymentOp.CANCEL)
        return payment

    async def act(payment: Payment) -> ProviderPayment | None:
        if payment.state is PaymentState.CANCELED or not payment.provider_payment_id:
            return None
        return await deps.provider.cancel_payment(
            payment.provider_payment_id, f"{payment.id}:cancel"
        )

    def finish(payment: Payment, result: ProviderPayment | None, now: datetime) -> None:
        if payment.state is not PaymentState.CANCELED:
            payment.apply(PaymentOp.CANCEL, now, reason=command.reason)

    return await _run(deps, scope, command.id, prepare, act, finish, _refused_by_truth(deps))


async def simulate_payment(
    deps: Dependencies, caller: str, command: SimulatePayment
) -> Outcome[Payment]:
    if not deps.simulation_enabled:
        raise Unimplemented(
            "SimulatePayment exists only when PAYMENTS_ENV is development or test",
            reason="SIMULATION_DISABLED",
        )
    validator = targeted(PAYMENT_ID, command.id, command.request_id)
    validator.check(command.succeed is not None, "outcome", "is required")
    validator.raise_if_any()
    provider = deps.simulator
    if provider is None:
        raise Unimplemented("SimulatePayment needs the mock provider", reason="SIMULATION_DISABLED")
    scope = optional_scope(
        caller, command.request_id, "SimulatePayment", {"id": command.id, "s": command.succeed}
    )

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Payment:
        del resume_id
        payment = await _load(uow, command.id)
        if payment.state not in (PaymentState.PROCESSING, PaymentState.REQUIRES_ACTION):
            next_state(payment.state, PaymentOp.PROVIDER_SUCCEEDED)
        return payment

    async def act(payment: Payment) -> ProviderPayment | None:
        if payment.state not in (PaymentState.PROCESSING, PaymentState.REQUIRES_ACTION):
            return None
        return provider.settle(payment.provider_payment_id, succeeded=bool(command.succeed))

    return await _run(deps, scope, command.id, prepare, act)


def require_payment_id(payment_id: str) -> None:
    require_id(PAYMENT_ID, payment_id)
