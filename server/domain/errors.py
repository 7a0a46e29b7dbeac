"""Errors the domain and service layers raise; server/grpc/errors.py maps each to a status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request, named by its path in the request message."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every expected failure; `reason` is the UPPER_SNAKE ErrorInfo reason."""

    reason: str = "ERROR"
    # Seconds the caller should wait before retrying (google.rpc.RetryInfo); None: no hint.
    retry_after: float | None = None

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: Mapping[str, str] = MappingProxyType(dict(metadata or {}))


class InvalidArgument(DomainError):
    """The request itself is wrong; nothing was stored."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: list[FieldViolation] | tuple[FieldViolation, ...],
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        self.violations = tuple(violations)
        text = message or "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(text, reason=reason)


class NotFound(DomainError):
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class IdempotencyKeyReused(DomainError):
    """The request_id was first used with other parameters or another method."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyInUse(DomainError):
    """The first call with this request_id is still running; retrying is safe."""

    reason = "IDEMPOTENCY_KEY_IN_USE"
    retry_after = 1.0


class ProviderUnavailable(DomainError):
    """The provider could not be reached or did not answer; the outcome may be unknown."""

    reason = "PROVIDER_UNAVAILABLE"
    retry_after = 1.0


class DatabaseUnavailable(DomainError):
    """The database could not be reached or dropped the connection; retrying is safe."""

    reason = "DATABASE_UNAVAILABLE"
    retry_after = 1.0


class TransactionConflict(DomainError):
    """The database undid the transaction (serialization failure, deadlock); retry it."""

    reason = "TRANSACTION_CONFLICT"
    retry_after = 0.1


class AuthKeysUnavailable(DomainError):
    """The token's signing keys (the JWKS) cannot be fetched now; the caller may retry."""

    reason = "AUTH_KEYS_UNAVAILABLE"


class Unimplemented(DomainError):
    reason = "UNIMPLEMENTED"


class Unauthenticated(DomainError):
    """No valid credentials: missing, malformed, expired or wrongly signed token."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    reason = "PERMISSION_DENIED"


class RateLimited(DomainError):
    """The caller spent its request budget; `retry_after` seconds refill enough for one."""

    reason = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after: float | None = retry_after


class Validator:
    """Collects field violations so that one response names every bad field at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.add(field, description)
        return ok

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)
