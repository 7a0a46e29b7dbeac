"""The `ErrorInfo` the server puts in every error's rich status."""

from __future__ import annotations

from typing import Any

from google.rpc import error_details_pb2, status_pb2
from grpc import aio


def error_info(error: aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The error's ErrorInfo (reason such as `CARD_DECLINED`, domain `payments.v1`)."""
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info
    return None
