"""The one place domain errors become rich gRPC statuses (google.rpc.Status)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from server.domain import errors

ERROR_DOMAIN = "payments.v1"
_log = logging.getLogger(__name__)

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.IdempotencyKeyReused: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.IdempotencyKeyInUse: grpc.StatusCode.ABORTED,
    errors.ProviderUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.AuthKeysUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _CODES:
            return _CODES[kind]
    return grpc.StatusCode.INTERNAL


# Messages and descriptions may quote what the client sent; gRPC clients refuse trailers
# over 8 KiB (RESOURCE_EXHAUSTED instead of our status), so each is cut to fit.
MAX_MESSAGE = 1000
MAX_DESCRIPTION = 300
MAX_VIOLATIONS = 10


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str] | None = None,
    violations: tuple[errors.FieldViolation, ...] = (),
    retry_after: float | None = None,
) -> status_pb2.Status:
    """A Status with exactly one ErrorInfo, a BadRequest when fields are at fault, and a
    RetryInfo when the caller should wait before trying again."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))
    packed = [info]
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_bounded(v.field, MAX_DESCRIPTION),
                    description=_bounded(v.description, MAX_DESCRIPTION),
                )
                for v in violations[:MAX_VIOLATIONS]
            ]
        )
        item = any_pb2.Any()
        item.Pack(bad_request)
        packed.append(item)
    if retry_after is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromNanoseconds(max(1, round(retry_after * 1e9)))
        item = any_pb2.Any()
        item.Pack(retry)
        packed.append(item)
    return status_pb2.Status(
        code=code.value[0], message=_bounded(message, MAX_MESSAGE), details=packed
    )


async def abort(context: aio.ServicerContext[Any, Any], status: status_pb2.Status) -> NoReturn:
    await context.abort(
        _STATUS_CODES[status.code],
        status.message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def status_for(error: errors.DomainError) -> status_pb2.Status:
    violations = error.violations if isinstance(error, errors.InvalidArgument) else ()
    retry_after = error.retry_after if isinstance(error, errors.RateLimited) else None
    return rich_status(
        status_code_for(error),
        error.message,
        error.reason,
        dict(error.metadata),
        violations,
        retry_after,
    )


Handler = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


def map_errors(handler: Handler) -> Handler:
    """Wrap a unary handler: DomainError -> its status; anything else -> INTERNAL (a bug)."""

    async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await handler(request, context)
        except errors.DomainError as error:
            await abort(context, status_for(error))
        except aio.AbortError:
            raise
        except Exception:
            _log.exception("unhandled error in %s", getattr(handler, "__name__", "handler"))
            await abort(
                context,
                rich_status(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL"),
            )

    return wrapped


if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = aio.ServerInterceptor


class ErrorMappingInterceptor(_Interceptor):
    """Applies `map_errors` to every unary method of our own services."""

    def __init__(self, package_prefix: str = "/payments.") -> None:
        self._prefix = package_prefix

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or not handler_call_details.method.startswith(self._prefix)
        ):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            map_errors(handler.unary_unary),  # type: ignore[arg-type]
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
