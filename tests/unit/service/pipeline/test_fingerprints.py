"""A request_id stays bound to the same parameters across releases: the fingerprint a
command stores is the one an earlier release stored for the same request."""

from __future__ import annotations

from server.service.pipeline.idempotency import fingerprint, parameters_of
from server.service.subscriptions.commands import (
    CancelSubscription,
    CreateSubscription,
    UpdateSubscription,
)


def test_subscription_commands_keep_their_fingerprints() -> None:
    create = CreateSubscription("r-1", "user-1", "pln_1", "pmt_1", trial_days=None)
    assert fingerprint("CreateSubscription", parameters_of(create)) == fingerprint(
        "CreateSubscription",
        {"user_id": "user-1", "plan_id": "pln_1", "payment_method_id": "pmt_1", "trial_days": None},
    )
    update = UpdateSubscription("sub_1", "r-2", plan_id="pln_2", cancel_at_period_end=True)
    assert fingerprint("UpdateSubscription", parameters_of(update)) == fingerprint(
        "UpdateSubscription",
        {
            "id": "sub_1",
            "plan_id": "pln_2",
            "cancel_at_period_end": True,
            "payment_method_id": None,
        },
    )
    cancel = CancelSubscription("sub_1", "r-3", at_period_end=True)
    assert fingerprint("CancelSubscription", parameters_of(cancel)) == fingerprint(
        "CancelSubscription", {"id": "sub_1", "at_period_end": True}
    )
