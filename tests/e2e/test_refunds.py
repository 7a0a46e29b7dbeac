"""RefundService through a real server process, with the generated Python stubs."""

from __future__ import annotations

import grpc
import pytest
from payments.v1 import (
    money_pb2,
    payments_pb2,
    payments_pb2_grpc,
    refunds_pb2,
    refunds_pb2_grpc,
)

from tests.support.server_process import ServerProcess


def test_refund_a_payment_end_to_end(sqlite_server: ServerProcess) -> None:
    with grpc.insecure_channel(sqlite_server.address) as channel:
        payments = payments_pb2_grpc.PaymentServiceStub(channel)
        refunds = refunds_pb2_grpc.RefundServiceStub(channel)
        payment = payments.CreatePayment(
            payments_pb2.CreatePaymentRequest(
                request_id="e2e-refund-pay",
                order_id="e2e-refund-order",
                user_id="user-1",
                amount=money_pb2.Money(currency_code="USD", minor_units=2000),
                payment_method_id="pm_card_visa",
                confirm=True,
            )
        )
        request = refunds_pb2.CreateRefundRequest(
            request_id="e2e-refund-1",
            payment_id=payment.id,
            amount=money_pb2.Money(currency_code="USD", minor_units=500),
            reason="returned",
        )
        first, call = refunds.CreateRefund.with_call(request)
        assert first.state == refunds_pb2.REFUND_STATE_SUCCEEDED
        assert first.id.startswith("ref_")
        assert ("idempotent-replayed", "true") not in call.trailing_metadata()
        again, call = refunds.CreateRefund.with_call(request)
        assert again.SerializeToString(deterministic=True) == first.SerializeToString(
            deterministic=True
        )
        assert ("idempotent-replayed", "true") in call.trailing_metadata()

        rest = refunds.CreateRefund(
            refunds_pb2.CreateRefundRequest(request_id="e2e-refund-2", payment_id=payment.id)
        )
        assert rest.amount.minor_units == 1500
        after = payments.GetPayment(payments_pb2.GetPaymentRequest(id=payment.id))
        assert after.state == payments_pb2.PAYMENT_STATE_REFUNDED
        assert after.amount_refunded.minor_units == 2000

        with pytest.raises(grpc.RpcError) as error:
            refunds.CreateRefund(
                refunds_pb2.CreateRefundRequest(request_id="e2e-refund-3", payment_id=payment.id)
            )
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as missing:
            refunds.CreateRefund(refunds_pb2.CreateRefundRequest(payment_id=payment.id))
        assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        assert refunds.GetRefund(refunds_pb2.GetRefundRequest(id=first.id)) == first
        listed = refunds.ListRefunds(refunds_pb2.ListRefundsRequest(payment_id=payment.id))
        assert [r.id for r in listed.refunds] == [first.id, rest.id]
        with pytest.raises(grpc.RpcError) as bad:
            refunds.GetRefund(refunds_pb2.GetRefundRequest(id="nope"))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
