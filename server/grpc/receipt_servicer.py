"""ReceiptService over gRPC: the receipt structured, written for a locale, as a PDF if asked."""

from __future__ import annotations

from payments.v1 import receipts_pb2, receipts_pb2_grpc

from server.adapters.money_format import parse_locale
from server.adapters.receipt_codec import receipt_to_proto
from server.adapters.receipt_pdf import render_receipt_pdf
from server.domain.principal import Principal
from server.grpc import methods as rpc
from server.service.dependencies import Dependencies
from server.service.receipts.queries import get_receipt


async def _receipt(
    deps: Dependencies, request: receipts_pb2.GetReceiptRequest, principal: Principal
) -> receipts_pb2.Receipt:
    locale = parse_locale(request.locale)
    receipt = await get_receipt(deps, request.id, principal.owner)
    pdf = render_receipt_pdf(receipt, locale) if request.include_pdf else b""
    return receipt_to_proto(receipt, locale, pdf)


class ReceiptServicer(rpc.Servicer, receipts_pb2_grpc.ReceiptServiceServicer):
    GetReceipt = rpc.answered(_receipt)
