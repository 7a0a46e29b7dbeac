"""ReceiptService over gRPC: the receipt structured, written for a locale, as a PDF if asked."""

from __future__ import annotations

from typing import Any

from grpc import aio
from payments.v1 import receipts_pb2, receipts_pb2_grpc

from server.adapters.money_format import parse_locale
from server.adapters.receipt_codec import receipt_to_proto
from server.adapters.receipt_pdf import render_receipt_pdf
from server.grpc.caller import principal_of
from server.service.dependencies import Dependencies
from server.service.receipts.queries import get_receipt

Context = aio.ServicerContext[Any, Any]


class ReceiptServicer(receipts_pb2_grpc.ReceiptServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def GetReceipt(
        self, request: receipts_pb2.GetReceiptRequest, context: Context
    ) -> receipts_pb2.Receipt:
        locale = parse_locale(request.locale)
        receipt = await get_receipt(self._deps, request.id, principal_of(context).owner)
        pdf = render_receipt_pdf(receipt, locale) if request.include_pdf else b""
        return receipt_to_proto(receipt, locale, pdf)
