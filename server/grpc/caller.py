"""Who is calling: the scope of idempotency keys."""

from __future__ import annotations

from typing import Any

from grpc import aio

# Until authentication exists every caller shares one scope; the principal
# from the verified token takes its place then.
ANONYMOUS = "anonymous"


def caller_of(context: aio.ServicerContext[Any, Any]) -> str:
    del context
    return ANONYMOUS
