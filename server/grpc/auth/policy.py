"""Who may call which RPC: the one table. Every method of every service we serve has a
row (tests/unit/grpc/test_policy.py fails otherwise); a method without one is refused.

Customers reach only their own data: the servicers restrict them through
`Principal.owner` (another user's resource is NOT_FOUND, lists are forced to
their own user_id). Health and reflection are open to anyone who can connect.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.principal import Role

CUSTOMER, SERVICE, ADMIN = Role.CUSTOMER, Role.SERVICE, Role.ADMIN
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    # Mutating calls spend the caller's rate limit.
    mutating: bool = False


def rule(*roles: Role, mutating: bool = False) -> Rule:
    return Rule(frozenset(roles), mutating)


RULES: dict[str, Rule] = {
    # Payments: a customer pays and manages their own; services do it for any user.
    "/payments.v1.PaymentService/CreatePayment": rule(CUSTOMER, SERVICE, ADMIN, mutating=True),
    "/payments.v1.PaymentService/GetPayment": rule(CUSTOMER, SERVICE, ADMIN),
    "/payments.v1.PaymentService/ConfirmPayment": rule(CUSTOMER, SERVICE, ADMIN, mutating=True),
    "/payments.v1.PaymentService/CapturePayment": rule(CUSTOMER, SERVICE, ADMIN, mutating=True),
    "/payments.v1.PaymentService/CancelPayment": rule(CUSTOMER, SERVICE, ADMIN, mutating=True),
    # Listing across users is an operator's view; customers get only their own.
    "/payments.v1.PaymentService/ListPayments": rule(CUSTOMER, ADMIN),
    # Test tooling (it does not exist in production) and the janitor: operators only.
    "/payments.v1.PaymentService/SimulatePayment": rule(ADMIN, mutating=True),
    "/payments.v1.PaymentService/ReconcilePayments": rule(ADMIN, mutating=True),
    # Refunds move money back: operators issue them; customers read their own.
    "/payments.v1.RefundService/CreateRefund": rule(ADMIN, mutating=True),
    "/payments.v1.RefundService/GetRefund": rule(CUSTOMER, ADMIN),
    "/payments.v1.RefundService/ListRefunds": rule(CUSTOMER, ADMIN),
    # Saved cards belong to their customer.
    "/payments.v1.PaymentMethodService/AttachPaymentMethod": rule(CUSTOMER, ADMIN, mutating=True),
    "/payments.v1.PaymentMethodService/GetPaymentMethod": rule(CUSTOMER, ADMIN),
    "/payments.v1.PaymentMethodService/ListPaymentMethods": rule(CUSTOMER, ADMIN),
    "/payments.v1.PaymentMethodService/UpdatePaymentMethod": rule(CUSTOMER, ADMIN, mutating=True),
    "/payments.v1.PaymentMethodService/DetachPaymentMethod": rule(CUSTOMER, ADMIN, mutating=True),
    # Plans are the catalogue: operators set it, every caller may read it.
    "/payments.v1.SubscriptionService/CreatePlan": rule(ADMIN, mutating=True),
    "/payments.v1.SubscriptionService/ArchivePlan": rule(ADMIN, mutating=True),
    "/payments.v1.SubscriptionService/GetPlan": rule(CUSTOMER, SERVICE, ADMIN),
    "/payments.v1.SubscriptionService/ListPlans": rule(CUSTOMER, SERVICE, ADMIN),
    # Subscriptions belong to their customer, like saved cards.
    "/payments.v1.SubscriptionService/CreateSubscription": rule(CUSTOMER, ADMIN, mutating=True),
    "/payments.v1.SubscriptionService/GetSubscription": rule(CUSTOMER, ADMIN),
    "/payments.v1.SubscriptionService/ListSubscriptions": rule(CUSTOMER, ADMIN),
    "/payments.v1.SubscriptionService/UpdateSubscription": rule(CUSTOMER, ADMIN, mutating=True),
    "/payments.v1.SubscriptionService/CancelSubscription": rule(CUSTOMER, ADMIN, mutating=True),
    # Figures across every customer: operators only.
    "/payments.v1.AnalyticsService/GetPaymentStats": rule(ADMIN),
    "/payments.v1.AnalyticsService/GetRevenueSeries": rule(ADMIN),
    # A receipt is its customer's; services fetch it to send or print it.
    "/payments.v1.ReceiptService/GetReceipt": rule(CUSTOMER, SERVICE, ADMIN),
    # Who did what: finance and security, through operators.
    "/payments.v1.AuditService/ListAuditEvents": rule(ADMIN),
    "/payments.v1.AuditService/ListProviderExchanges": rule(ADMIN),
}


def is_open(method: str) -> bool:
    return method.startswith(OPEN_PREFIXES)
