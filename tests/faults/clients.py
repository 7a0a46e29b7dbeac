"""Well-behaved clients: every call retried with the same request_id, as the runbook says.

UNAVAILABLE and ABORTED (and a deadline that ran out) are retried with the same
request; any other status is the answer. INTERNAL and UNKNOWN are counted: the
runbook calls them bugs, so the suite fails on any; the client still retries
them so that the money invariants can be checked afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc, refunds_pb2, refunds_pb2_grpc

RETRIED = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
BUGS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A CreatePayment answered: what the caller was told."""

    request_id: str
    payment_id: str
    order_id: str
    user_id: str
    amount: int


@dataclass
class Tally:
    """What every client saw, shared (under a lock) by all of them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    # Monotonic times of successful calls, to measure each fault's recovery.
    successes: list[float] = field(default_factory=list)
    replay_mismatches: list[str] = field(default_factory=list)
    unanswered: int = 0
    # When each INTERNAL or UNKNOWN came, and what it said.
    bug_times: list[float] = field(default_factory=list)
    bug_details: list[str] = field(default_factory=list)

    def saw(self, code: grpc.StatusCode, detail: str = "") -> None:
        with self.lock:
            self.codes[code.name] += 1
            if code in BUGS:
                self.bug_times.append(time.monotonic())
                if len(self.bug_details) < 20:
                    self.bug_details.append(detail)
            if code is grpc.StatusCode.OK:
                self.successes.append(time.monotonic())

    @property
    def bugs(self) -> int:
        return sum(self.codes[code.name] for code in BUGS)


class Client(threading.Thread):
    def __init__(
        self, number: int, address: str, run: str, tally: Tally, stop: threading.Event
    ) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.address, self.run_id = number, address, run
        self.tally, self.stop = tally, stop
        # Past this, a call still unanswered is given up (the suite is bounded).
        self.give_up_at = float("inf")

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            payments = payments_pb2_grpc.PaymentServiceStub(channel)
            refunds = refunds_pb2_grpc.RefundServiceStub(channel)
            n = 0
            while not self.stop.is_set():
                self._one_order(payments, refunds, n)
                n += 1

    def _one_order(
        self,
        payments: payments_pb2_grpc.PaymentServiceStub,
        refunds: refunds_pb2_grpc.RefundServiceStub,
        n: int,
    ) -> None:
        key = f"{self.run_id}-c{self.number}-n{n}"
        manual = n % 3 == 2
        create = payments_pb2.CreatePaymentRequest(
            request_id=f"{key}-create",
            order_id=f"{key}-order",
            user_id=f"user-{self.number}",
            amount=money_pb2.Money(currency_code=CURRENCY, minor_units=1000 + n),
            payment_method_id="pm_card_visa",
            capture_method=payments_pb2.CAPTURE_METHOD_MANUAL
            if manual
            else payments_pb2.CAPTURE_METHOD_AUTOMATIC,
            confirm=True,
        )
        payment = self._call(payments.CreatePayment, create)
        if payment is None:
            return
        with self.tally.lock:
            self.tally.acknowledged.append(
                Acknowledged(
                    create.request_id, payment.id, create.order_id, create.user_id, 1000 + n
                )
            )
        if n % 4 == 0:
            # A retry after the answer arrived must get the same payment.
            again = self._call(payments.CreatePayment, create)
            if again is not None and again.id != payment.id:
                with self.tally.lock:
                    self.tally.replay_mismatches.append(create.request_id)
        if payment.state == payments_pb2.PAYMENT_STATE_REQUIRES_CAPTURE:
            payment = self._call(
                payments.CapturePayment,
                payments_pb2.CapturePaymentRequest(id=payment.id, request_id=f"{key}-capture"),
            )
        succeeded = payment is not None and payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
        if succeeded and n % 2 == 0:
            self._call(
                refunds.CreateRefund,
                refunds_pb2.CreateRefundRequest(
                    request_id=f"{key}-refund",
                    payment_id=payment.id,
                    amount=money_pb2.Money(currency_code=CURRENCY, minor_units=300),
                ),
            )

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        """The answer to `request`, retried with the same request_id; None if it never came."""
        while True:
            try:
                reply = method(request, timeout=10)
            except grpc.RpcError as error:
                code = error.code()
                self.tally.saw(code, f"{code.name}: {error.details()}")
                if code in RETRIED or code in BUGS:
                    if time.monotonic() > self.give_up_at:
                        with self.tally.lock:
                            self.tally.unanswered += 1
                        return None
                    time.sleep(0.2)  # a client's back-off between retries
                    continue
                return None  # an answer, if not a success
            self.tally.saw(grpc.StatusCode.OK)
            return reply
