"""Bearer JWT verification: HS256 with a shared secret, RS256/ES256 with keys from a JWKS URL.

The algorithm in the token's header only chooses between the keys we were given;
a token can never make us verify an HS256 signature with a public key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jwt

from server.config import AuthSettings
from server.domain.errors import AuthKeysUnavailable, Unauthenticated
from server.domain.principal import Principal, principal_from_claims

_log = logging.getLogger(__name__)
ASYMMETRIC = ("RS256", "ES256")
# Clocks of issuer and server drift a little.
LEEWAY_SECONDS = 30
# Keys cached this long; an unknown `kid` refetches at most this often (key rotation).
JWKS_LIFESPAN_SECONDS = 300
JWKS_COOLDOWN_SECONDS = 30
# Verified tokens kept, the oldest dropped first. A token is at most a few KiB (gRPC's
# metadata limit), so the bound is also one on memory.
VERIFIED_TOKENS = 4096
# A verified token is checked afresh this often, however long it lives: a key the JWKS no
# longer lists is not honoured much longer than the key cache would keep it.
VERIFIED_LIFESPAN_SECONDS = 60


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    not_before: int
    expires: int
    verified_at: float


class VerifiedTokens:
    """Tokens that verified, by their exact text, with the caller each names.

    The signature, issuer and audience of a token never change, so they are checked once;
    its time window is checked against the clock on every use, with PyJWT's leeway and
    bounds. Only tokens that verified are put here.
    """

    def __init__(
        self,
        size: int = VERIFIED_TOKENS,
        lifespan: float = VERIFIED_LIFESPAN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._size = size
        self._lifespan = lifespan
        self._clock = clock
        self._entries: dict[str, _Verified] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        """The caller `token` verified as; None when it must be verified (again);
        Unauthenticated when it is out of its time window now."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        now = self._clock()
        if entry.expires <= now - LEEWAY_SECONDS:
            del self._entries[token]
            raise Unauthenticated("token expired")
        if entry.not_before > now + LEEWAY_SECONDS:
            del self._entries[token]
            raise Unauthenticated("token not valid yet")
        if not 0 <= now - entry.verified_at < self._lifespan:
            del self._entries[token]
            return None
        return entry.principal

    def put(self, token: str, claims: dict[str, object], principal: Principal) -> None:
        """Keep `token`, whose `claims` just verified."""
        not_before = max(_seconds(claims.get("nbf")), _seconds(claims.get("iat")))
        expires = _seconds(claims["exp"])
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = _Verified(principal, not_before, expires, self._clock())


def _seconds(value: object) -> int:
    """A time claim as PyJWT compares it; it refused the token if int() fails."""
    return int(value) if isinstance(value, int | float | str) else 0


class TokenVerifier:
    def __init__(
        self,
        settings: AuthSettings,
        jwks_cooldown: float = JWKS_COOLDOWN_SECONDS,
        verified: VerifiedTokens | None = None,
    ) -> None:
        self._settings = settings
        self._verified = verified if verified is not None else VerifiedTokens()
        self._jwks = (
            jwt.PyJWKClient(
                settings.jwks_url,
                lifespan=JWKS_LIFESPAN_SECONDS,
                timeout=5,
                cooldown_duration=jwks_cooldown,
            )
            if settings.jwks_url
            else None
        )
        # Parsed public keys by kid: the hot path skips the thread and the key parsing.
        self._keys: dict[str, tuple[float, object]] = {}

    async def principal(self, authorization: Sequence[str]) -> Principal:
        """The verified caller of a request with these `authorization` values, or
        Unauthenticated."""
        token = bearer_token(authorization)
        known = self._verified.get(token)
        if known is not None:
            return known
        claims = await self._claims(token)
        principal = principal_from_claims(
            claims,
            admin_role=self._settings.admin_role,
            service_role=self._settings.service_role,
        )
        self._verified.put(token, claims, principal)
        return principal

    async def _claims(self, token: str) -> dict[str, object]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise Unauthenticated("malformed bearer token") from None
        key: object
        if algorithm == "HS256" and self._settings.jwt_secrets:
            key = _signing_secret(token, self._settings.jwt_secrets)
        elif algorithm in ASYMMETRIC and self._jwks is not None:
            key = await self._public_key(token)
        else:
            raise Unauthenticated("token signed with an algorithm this server does not accept")
        audience = self._settings.audience
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[algorithm],
                audience=audience,
                issuer=self._settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token not valid yet") from None
        except jwt.PyJWTError as error:
            # PyJWT's messages name claims, never the token or the key.
            raise Unauthenticated(f"invalid token: {error}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated("invalid token: sub must be a non-empty string")
        return claims

    async def _public_key(self, token: str) -> object:
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        cached = self._keys.get(kid) if isinstance(kid, str) else None
        if cached is not None and time.monotonic() - cached[0] < JWKS_LIFESPAN_SECONDS:
            return cached[1]
        try:
            # urllib underneath: keep the event loop free while the JWKS is fetched.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as error:
            if cached is not None:
                # A key we verified with before outlives a JWKS outage: rotation
                # overlaps keys, so a known kid is still the issuer's.
                _log.warning("cannot refresh the JWKS (%s); using the cached key", error)
                return cached[1]
            _log.warning("cannot fetch the JWKS: %s", error)
            raise AuthKeysUnavailable("cannot verify the token now, try again") from None
        except jwt.PyJWTError:
            raise Unauthenticated("token signed with an unknown key") from None
        if isinstance(kid, str):
            # Only kids the JWKS holds get here, so the cache stays as small as the key set.
            self._keys[kid] = (time.monotonic(), signing_key.key)
        return signing_key.key


def _signing_secret(token: str, secrets: Sequence[str]) -> str:
    """The HS256 secret that signed `token`: the current one, or an older one mid-rotation.

    Only the signature is compared here; the full check follows with the secret found.
    None matching: the current one, so the full check reports the bad signature.
    """
    if len(secrets) == 1:
        return secrets[0]
    signature_only: jwt.types.Options = {
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
    }
    for candidate in secrets:
        try:
            jwt.decode(token, candidate, algorithms=["HS256"], options=signature_only)
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            return candidate
        return candidate
    return secrets[0]


def bearer_token(authorization: Sequence[str]) -> str:
    if not authorization:
        raise Unauthenticated("missing bearer token in the authorization metadata")
    scheme, _, token = authorization[0].partition(" ")
    if len(authorization) > 1 or scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()


def mint_token(settings: AuthSettings, subject: str, roles: Sequence[str], ttl_seconds: int) -> str:
    """An HS256 token for development and operations (`payments token`)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "nbf": now, "exp": now + ttl_seconds}
    claims["roles"] = list(roles)
    if settings.issuer:
        claims["iss"] = settings.issuer
    if settings.audience:
        claims["aud"] = settings.audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
