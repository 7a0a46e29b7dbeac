"""What ListPaymentMethods asks the repository for, and the page it gets back."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.payment_method import PaymentMethod
from server.service.paging import DEFAULT_PAGE_SIZE, TimeCursor


@dataclass(frozen=True, slots=True)
class PaymentMethodQuery:
    """One user's attached methods, newest first."""

    user_id: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: TimeCursor | None = None


@dataclass(frozen=True, slots=True)
class PaymentMethodPage:
    methods: list[PaymentMethod]
    next_cursor: TimeCursor | None
