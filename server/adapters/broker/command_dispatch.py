"""Runs one queued command through the same servicers, service layer and idempotency
as the gRPC API, and says what the consumer must do with the message."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf.message import DecodeError, Message
from payments.v1 import commands_pb2

from server.domain.errors import DomainError
from server.domain.principal import Principal, Role
from server.grpc.audit_interceptor import resource_id_of
from server.grpc.caller import CURRENT
from server.grpc.errors import status_code_for, status_for
from server.grpc.methods import REPLAYED, Context
from server.grpc.payment_servicer import PaymentServicer
from server.grpc.refund_servicer import RefundServicer
from server.observability.correlation import CORRELATION_ID
from server.service.audit.context import AuditCall, begin_call, end_call, note_caller
from server.service.audit.refusals import record_refusal
from server.service.dependencies import Dependencies

_log = logging.getLogger(__name__)
# Refusals that may pass when tried again: the provider or the key's first run is busy.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of a command: the reply to send, and whether it is dead or to retry."""

    reply: commands_pb2.CommandReply | None = None
    # The reason header of a command that can never succeed (it goes to the dead letters).
    dead_reason: str = ""
    retry: bool = False


_COMMAND_NAMES = {
    "create_payment": "CreatePayment",
    "confirm_payment": "ConfirmPayment",
    "capture_payment": "CapturePayment",
    "cancel_payment": "CancelPayment",
    "create_refund": "CreateRefund",
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _code_of(reply: commands_pb2.CommandReply) -> grpc.StatusCode:
    return _CODES.get(reply.error.code, grpc.StatusCode.UNKNOWN)


class _QueuedCall:
    """The part of a gRPC servicer context the servicers use: the replay marker."""

    def __init__(self) -> None:
        self.replayed = False

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.replayed = self.replayed or metadata == REPLAYED


Run = Callable[[Any, Context], Awaitable[Message]]


class CommandDispatcher:
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps
        payments, refunds = PaymentServicer(deps), RefundServicer(deps)
        self._runs: dict[str, tuple[Run, str]] = {
            "create_payment": (payments.CreatePayment, "payment"),
            "confirm_payment": (payments.ConfirmPayment, "payment"),
            "capture_payment": (payments.CapturePayment, "payment"),
            "cancel_payment": (payments.CancelPayment, "payment"),
            "create_refund": (refunds.CreateRefund, "refund"),
        }

    async def handle(self, body: bytes, amqp_message_id: str | None) -> Handled:
        try:
            envelope = commands_pb2.CommandEnvelope.FromString(body)
        except DecodeError:
            return Handled(dead_reason="UNPARSEABLE")
        message_id = envelope.message_id or amqp_message_id or ""
        kind = envelope.WhichOneof("command")
        if not message_id:
            return Handled(dead_reason="MISSING_MESSAGE_ID")
        if kind is None:
            return Handled(dead_reason="UNKNOWN_COMMAND_TYPE")
        if not envelope.caller.subject:
            return Handled(dead_reason="MISSING_CALLER")
        run, result_field = self._runs[kind]
        request = getattr(envelope, kind)
        if not request.request_id:
            # The message id is the idempotency key: a redelivery replays.
            request.request_id = message_id
        call = AuditCall(
            channel="queue",
            action=f"command {_COMMAND_NAMES[kind]}",
            request_id=request.request_id,
            resource_id=resource_id_of(request),
            calling_service=envelope.caller.subject,
        )
        token = begin_call(call)
        try:
            handled = await self._run(run, request, envelope, message_id, result_field)
        finally:
            end_call(token)
        if handled.dead_reason and handled.reply is not None:
            await record_refusal(
                self._deps, call, _code_of(handled.reply).name, handled.dead_reason
            )
        return handled

    async def _run(
        self,
        run: Run,
        request: Message,
        envelope: commands_pb2.CommandEnvelope,
        message_id: str,
        result_field: str,
    ) -> Handled:
        # Callers on the queue act as services: never as admins (no window override).
        caller = Principal(
            envelope.caller.subject, envelope.caller.issuer, frozenset({Role.SERVICE})
        )
        note_caller(caller)
        call = _QueuedCall()
        principal_token = CURRENT.set(caller)
        correlation_token = CORRELATION_ID.set(message_id)
        try:
            result = await run(request, cast(Context, call))
        except DomainError as error:
            return _refused(error, message_id)
        finally:
            CORRELATION_ID.reset(correlation_token)
            CURRENT.reset(principal_token)
        reply = commands_pb2.CommandReply(message_id=message_id, replayed=call.replayed)
        getattr(reply, result_field).CopyFrom(result)
        return Handled(reply=reply)


def _refused(error: DomainError, message_id: str) -> Handled:
    code = status_code_for(error)
    if code in RETRYABLE:
        _log.info("command %s: %s, to be retried", message_id, error.reason)
        return Handled(retry=True)
    status = status_for(error)
    reply = commands_pb2.CommandReply(
        message_id=message_id,
        error=commands_pb2.CommandError(
            code=code.value[0],
            reason=error.reason,
            message=error.message,
            status=status.SerializeToString(),
        ),
    )
    _log.info("command %s refused: %s", message_id, error.reason)
    return Handled(reply=reply, dead_reason=error.reason)
