"""Client interceptors: a bearer token per call, a request_id for writes sent without one.

An interceptor runs once per call the application makes; gRPC's retries happen below
it and resend the bytes it produced. So an id made here is made once per call and every
retry of that call carries it.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from grpc import aio

# Returns the current access token (fetch or refresh it as you like; cache it).
TokenSource = Callable[[], str | Awaitable[str]]
Continuation = Callable[[aio.ClientCallDetails, Any], Any]
if TYPE_CHECKING:  # generic only in the type stubs
    _Interceptor = aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _Interceptor = aio.UnaryUnaryClientInterceptor


def new_request_id() -> str:
    return str(uuid.uuid4())


def fill_request_id(request: Any) -> str | None:
    """Give `request` a request_id when it has the field and it is empty; return the id.

    The id is written into the caller's message on purpose: sending that same message
    again (a retry of yours, after the call failed for good) is then the same
    operation, and the server replays or resumes it instead of charging again.
    """
    descriptor = getattr(request, "DESCRIPTOR", None)
    if descriptor is None or "request_id" not in descriptor.fields_by_name:
        return None
    if not request.request_id:
        request.request_id = new_request_id()
    return str(request.request_id)


class RequestIdInterceptor(_Interceptor):
    async def intercept_unary_unary(
        self, continuation: Continuation, client_call_details: aio.ClientCallDetails, request: Any
    ) -> Any:
        fill_request_id(request)
        return await continuation(client_call_details, request)


class BearerTokenInterceptor(_Interceptor):
    """`authorization: Bearer <token>` on every call, asking `token` each time."""

    def __init__(self, token: TokenSource) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Continuation, client_call_details: aio.ClientCallDetails, request: Any
    ) -> Any:
        token = self._token()
        if inspect.isawaitable(token):
            token = await token
        metadata = aio.Metadata(*(client_call_details.metadata or ()))
        metadata["authorization"] = f"Bearer {token}"
        details = aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)
