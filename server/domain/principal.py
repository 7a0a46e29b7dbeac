"""Who is calling, as far as the rules of the service care."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    CUSTOMER = "customer"  # a person: sees and moves only their own money
    SERVICE = "service"  # another microservice: takes payments for any user
    ADMIN = "admin"  # an operator: everything


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    issuer: str
    roles: frozenset[Role]

    @property
    def scope(self) -> str:
        """Scopes idempotency keys: one caller can never replay another's response."""
        return f"{self.issuer}|{self.subject}" if self.issuer else self.subject

    @property
    def owner(self) -> str | None:
        """The user whose data alone this caller may touch; None when not restricted."""
        if Role.ADMIN in self.roles or Role.SERVICE in self.roles:
            return None
        return self.subject

    def may_see_client_secret_of(self, user_id: str) -> bool:
        """Only the payment's owner (in open development mode, everyone is)."""
        return self.owner == user_id or self is ANONYMOUS


# Open development mode: one shared scope, and every rule passes.
ANONYMOUS = Principal("anonymous", "", frozenset(Role))


def may_read(owner: str | None, user_id: str) -> bool:
    """A customer (`owner` set) reads only their own user's resources; services and admins
    (no owner) read every user's."""
    return owner is None or user_id == owner


def principal_from_claims(
    claims: dict[str, object], *, admin_role: str, service_role: str
) -> Principal:
    """Roles from Keycloak's `realm_access.roles` and from a plain `roles` claim."""
    names: set[str] = set()
    realm_access = claims.get("realm_access")
    if isinstance(realm_access, dict):
        names.update(_strings(realm_access.get("roles")))
    names.update(_strings(claims.get("roles")))
    roles = {
        role
        for role, name in ((Role.ADMIN, admin_role), (Role.SERVICE, service_role))
        if name in names
    }
    issuer = claims.get("iss")
    return Principal(
        subject=str(claims["sub"]),
        issuer=issuer if isinstance(issuer, str) else "",
        roles=frozenset(roles or {Role.CUSTOMER}),
    )


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
