"""Who may refund past the refund window, and how they must say so."""

from __future__ import annotations

from server.domain.errors import PermissionDenied, Validator
from server.domain.principal import Principal, Role
from server.service.commands import MAX_REASON, check_text

FIELD = "window_override.reason"


def window_override_of(principal: Principal, requested: bool, reason: str) -> str | None:
    """The override reason to put on the command; PermissionDenied unless an admin asks."""
    if not requested:
        return None
    if Role.ADMIN not in principal.roles:
        raise PermissionDenied(
            "only an admin may refund past the refund window",
            reason="REFUND_WINDOW_OVERRIDE_DENIED",
        )
    return reason


def check_window_override(validator: Validator, reason: str | None) -> None:
    """An override needs a reason: it is the record of why the window was ignored."""
    if reason is None:
        return
    validator.check(bool(reason.strip()), FIELD, "must say why the refund window is overridden")
    check_text(validator, FIELD, reason, MAX_REASON)
