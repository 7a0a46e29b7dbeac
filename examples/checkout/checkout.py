"""An example calling service: a checkout that takes payment for an order.

It uses the payments-client package only (`pip install ./clients/python`):

    python examples/checkout/checkout.py localhost:50051 order-1001 1999 USD

With authentication on, set PAYMENTS_TOKEN to the service's bearer token (in
production a callback would fetch and refresh it from the identity provider).
"""

from __future__ import annotations

import asyncio
import os
import sys

from grpc import aio
from payments.v1 import money_pb2, payments_pb2
from payments_client import PaymentsClient, connect, error_info


def token_from_environment() -> str:
    return os.environ["PAYMENTS_TOKEN"]


async def pay_for_order(
    client: PaymentsClient, order_id: str, user_id: str, amount: money_pb2.Money
) -> payments_pb2.Payment:
    """Charge the order once, however often this runs for it.

    The request_id comes from the order, not from the helper: a checkout that crashes
    and runs again for the same order asks for the same payment, and gets it back.
    """
    return await client.payments.CreatePayment(
        payments_pb2.CreatePaymentRequest(
            request_id=f"checkout:{order_id}",
            order_id=order_id,
            user_id=user_id,
            amount=amount,
            payment_method_id="pm_card_visa",
            confirm=True,
        )
    )


async def main(address: str, order_id: str, minor_units: int, currency: str) -> int:
    token = token_from_environment if "PAYMENTS_TOKEN" in os.environ else None
    async with PaymentsClient(connect(address, token=token)) as client:
        amount = money_pb2.Money(currency_code=currency, minor_units=minor_units)
        try:
            payment = await pay_for_order(client, order_id, "user-42", amount)
        except aio.AioRpcError as error:
            info = error_info(error)
            print(f"payment refused: {info.reason if info else error.details()}", file=sys.stderr)
            return 1
    print(payment.id, payments_pb2.PaymentState.Name(payment.state))
    return 0


if __name__ == "__main__":
    address, order_id, minor_units, currency = sys.argv[1:5]
    sys.exit(asyncio.run(main(address, order_id, int(minor_units), currency)))
