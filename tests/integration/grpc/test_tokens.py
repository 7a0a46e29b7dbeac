"""Bearer token verification: HS256 secrets and RS256/ES256 keys from a real JWKS endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import jwt
import pytest

from server.config import AuthSettings
from server.domain.errors import AuthKeysUnavailable, Unauthenticated
from server.domain.principal import Principal, Role
from server.grpc.auth import tokens
from server.grpc.auth.tokens import TokenVerifier, VerifiedTokens, bearer_token, mint_token
from tests.support.auth import AUDIENCE, ISSUER, JWT_SECRET, JwksServer, SigningKey, hs256_token
from tests.support.server_process import free_port

HS = AuthSettings(jwt_secrets=(JWT_SECRET,), issuer=ISSUER, audience=AUDIENCE)


def header(token: str) -> list[str]:
    return [f"Bearer {token}"]


async def test_a_good_hs256_token_names_its_caller() -> None:
    principal = await TokenVerifier(HS).principal(header(hs256_token("user-a")))
    assert principal.subject == "user-a"
    assert principal.roles == {Role.CUSTOMER}
    assert principal.owner == "user-a"
    assert principal.scope == f"{ISSUER}|user-a"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (("service",), {Role.SERVICE}),
        (("admin",), {Role.ADMIN}),
        (("admin", "service"), {Role.ADMIN, Role.SERVICE}),
        (("offline_access",), {Role.CUSTOMER}),
    ],
)
async def test_plain_roles_claim(roles: tuple[str, ...], expected: set[Role]) -> None:
    principal = await TokenVerifier(HS).principal(header(hs256_token("svc", roles)))
    assert principal.roles == expected
    assert (principal.owner is None) == (Role.CUSTOMER not in expected)


def refused(reason_part: str) -> pytest.RaisesExc[Unauthenticated]:
    return pytest.raises(Unauthenticated, match=reason_part)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: hs256_token("a", ttl=-120), "expired"),
        (lambda: hs256_token("a", nbf=int(time.time()) + 600), "not valid yet"),
        (lambda: hs256_token("a", secret="another-secret-0123456789abcdef0123"), "invalid token"),
        (lambda: hs256_token("a", issuer="https://evil.example/realms/shop"), "invalid token"),
        (lambda: hs256_token("a", audience="someone-else"), "invalid token"),
        (
            lambda: jwt.encode({"sub": "a", "iss": ISSUER, "aud": AUDIENCE}, JWT_SECRET),
            "invalid token",
        ),
        (lambda: jwt.encode({"sub": "a", "exp": 9e9}, key="", algorithm="none"), "algorithm"),
        (lambda: "not.a.token", "malformed"),
        (lambda: hs256_token(""), "sub"),
    ],
    ids=["expired", "nbf", "wrong-secret", "issuer", "audience", "no-exp", "none", "junk", "sub"],
)
async def test_bad_tokens_are_unauthenticated(make: Callable[[], str], why: str) -> None:
    # Minted when the test runs, not at collection: a long run must not expire them first.
    with refused(why):
        await TokenVerifier(HS).principal(header(make()))


@pytest.mark.parametrize(
    "values", [[], ["Basic dXNlcjpwYXNz"], ["Bearer "], ["Bearer a", "Bearer b"]]
)
def test_the_authorization_metadata_must_be_one_bearer_token(values: list[str]) -> None:
    with refused("authorization|missing"):
        bearer_token(values)


def test_the_scheme_is_case_insensitive() -> None:
    assert bearer_token(["bearer abc"]) == "abc"


@pytest.fixture
def keys() -> list[SigningKey]:
    return [SigningKey("RS256"), SigningKey("ES256")]


@pytest.fixture
def jwks(keys: list[SigningKey]) -> Iterator[JwksServer]:
    with JwksServer(keys) as server:
        yield server


def jwks_settings(
    jwks: JwksServer, admin_role: str = "admin", service_role: str = "service"
) -> AuthSettings:
    return AuthSettings(
        jwks_url=jwks.url,
        issuer=ISSUER,
        audience=AUDIENCE,
        admin_role=admin_role,
        service_role=service_role,
    )


async def test_keycloak_tokens_work_as_they_come(keys: list[SigningKey], jwks: JwksServer) -> None:
    verifier = TokenVerifier(jwks_settings(jwks))
    for key in keys:
        admin = await verifier.principal(header(key.keycloak_token("f3a1-ops", ("admin",))))
        assert admin.roles == {Role.ADMIN}
        customer = await verifier.principal(header(key.keycloak_token("9c2e-user")))
        assert customer.roles == {Role.CUSTOMER}
        assert customer.owner == "9c2e-user"
    assert jwks.fetches == 1  # the key set is cached


async def test_an_unknown_kid_refetches_the_key_set(
    keys: list[SigningKey], jwks: JwksServer
) -> None:
    verifier = TokenVerifier(jwks_settings(jwks), jwks_cooldown=0)
    await verifier.principal(header(keys[0].keycloak_token("u")))
    rotated = SigningKey("RS256")
    jwks.keys.append(rotated)
    principal = await verifier.principal(header(rotated.keycloak_token("u2", ("service",))))
    assert principal.roles == {Role.SERVICE}
    assert jwks.fetches == 2


async def test_keys_outside_the_key_set_are_refused(jwks: JwksServer) -> None:
    stranger = SigningKey("ES256")
    with refused("unknown key"):
        await TokenVerifier(jwks_settings(jwks), jwks_cooldown=0).principal(
            header(stranger.keycloak_token("u"))
        )


async def test_an_hs256_token_signed_with_a_public_key_is_refused(
    keys: list[SigningKey], jwks: JwksServer
) -> None:
    """Algorithm confusion: without a shared secret, HS256 is not accepted at all."""
    public_pem = keys[0].jwk()["n"]
    token = jwt.encode({"sub": "a", "exp": time.time() + 60}, public_pem, algorithm="HS256")
    with refused("algorithm"):
        await TokenVerifier(jwks_settings(jwks)).principal(header(token))


async def test_a_role_name_mapping_is_configurable(
    keys: list[SigningKey], jwks: JwksServer
) -> None:
    settings = jwks_settings(jwks, admin_role="payments-admin", service_role="payments-service")
    verifier = TokenVerifier(settings)
    principal = await verifier.principal(
        header(keys[0].keycloak_token("ops", ("payments-admin", "admin")))
    )
    assert principal.roles == {Role.ADMIN}
    plain = await verifier.principal(header(keys[1].keycloak_token("u", ("admin",))))
    assert plain.roles == {Role.CUSTOMER}


async def test_minted_tokens_verify() -> None:
    token = mint_token(HS, "ops-1", ["admin"], 60)
    principal = await TokenVerifier(HS).principal(header(token))
    assert principal.roles == {Role.ADMIN}
    assert principal.issuer == ISSUER


async def test_an_unreachable_key_set_is_unavailable_not_unauthenticated() -> None:
    """The caller's token may be fine: UNAVAILABLE tells it to retry, not to log in again."""
    settings = AuthSettings(jwks_url=f"http://127.0.0.1:{free_port()}/certs", issuer=ISSUER)
    with pytest.raises(AuthKeysUnavailable):
        await TokenVerifier(settings, jwks_cooldown=0).principal(
            header(SigningKey("RS256").keycloak_token("u"))
        )


async def test_a_known_key_outlives_a_key_set_outage(
    keys: list[SigningKey], jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(jwks_settings(jwks), jwks_cooldown=0)
    await verifier.principal(header(keys[0].keycloak_token("u")))
    jwks.__exit__()
    # Every cache expired: the verifier must go back to the (now unreachable) key set.
    monkeypatch.setattr(tokens, "JWKS_LIFESPAN_SECONDS", -1)
    verifier._jwks = jwt.PyJWKClient(jwks.url, lifespan=1, timeout=1)  # its own cache empty
    principal = await verifier.principal(header(keys[0].keycloak_token("u")))
    assert principal.owner == "u"
    with pytest.raises(AuthKeysUnavailable):
        await verifier.principal(header(keys[1].keycloak_token("u")))


async def test_hs256_rotation_accepts_the_old_secret_until_it_is_removed() -> None:
    new = "a-brand-new-secret-of-at-least-32-bytes!"
    rolling = TokenVerifier(AuthSettings(jwt_secrets=(new, JWT_SECRET), issuer=ISSUER))
    for secret in (new, JWT_SECRET):
        principal = await rolling.principal(header(hs256_token("user-a", secret=secret)))
        assert principal.owner == "user-a"
    with refused("expired"):
        await rolling.principal(header(hs256_token("user-a", secret=JWT_SECRET, ttl=-300)))
    with refused("Signature"):
        await rolling.principal(header(hs256_token("user-a", secret="x" * 40)))
    rolled = TokenVerifier(AuthSettings(jwt_secrets=(new,), issuer=ISSUER))
    with refused("Signature"):
        await rolled.principal(header(hs256_token("user-a", secret=JWT_SECRET)))
    minted = mint_token(
        AuthSettings(jwt_secrets=(new, JWT_SECRET), issuer=ISSUER), "ops", ("admin",), 60
    )
    assert (await rolled.principal(header(minted))).subject == "ops"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def caching(
    clock: Clock, size: int = tokens.VERIFIED_TOKENS
) -> tuple[TokenVerifier, VerifiedTokens]:
    verified = VerifiedTokens(size, clock=clock)
    return TokenVerifier(HS, verified=verified), verified


async def test_a_cached_token_still_expires() -> None:
    clock = Clock()
    verifier, verified = caching(clock)
    token = hs256_token("user-a", ttl=600)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert (await verifier.principal(header(token))).owner == "user-a"
    assert len(verified) == 1
    clock.now = expires + tokens.LEEWAY_SECONDS - 1
    assert (await verifier.principal(header(token))).owner == "user-a"
    clock.now = expires + tokens.LEEWAY_SECONDS
    with refused("expired"):
        await verifier.principal(header(token))
    assert len(verified) == 0


async def test_a_cached_token_is_refused_before_its_time_window() -> None:
    """Should the clock step back below the token's nbf, it is not valid yet, cached or not."""
    clock = Clock()
    verifier, _ = caching(clock)
    token = hs256_token("user-a", nbf=int(clock.now))
    await verifier.principal(header(token))
    clock.now -= tokens.LEEWAY_SECONDS + 2
    with refused("not valid yet"):
        await verifier.principal(header(token))


async def test_only_tokens_that_verify_are_cached() -> None:
    verifier, verified = caching(Clock())
    good = hs256_token("user-a")
    await verifier.principal(header(good))
    bad = [
        hs256_token("user-a", secret="another-secret-0123456789abcdef0123"),
        hs256_token("user-a", ttl=-120),
        hs256_token("user-a", issuer="https://evil.example/realms/shop"),
        hs256_token(""),
    ]
    for token in bad:
        for _ in range(2):
            with pytest.raises(Unauthenticated):
                await verifier.principal(header(token))
    assert len(verified) == 1


async def test_the_cache_keeps_at_most_its_size_and_drops_the_oldest() -> None:
    verifier, verified = caching(Clock(), size=2)
    minted = [hs256_token(f"user-{n}") for n in range(3)]
    for token in minted:
        await verifier.principal(header(token))
    assert len(verified) == 2
    assert verified.get(minted[0]) is None
    assert [verified.get(token) is not None for token in minted[1:]] == [True, True]


def test_a_cached_token_is_verified_afresh_after_the_lifespan() -> None:
    clock = Clock()
    verified = VerifiedTokens(lifespan=60, clock=clock)
    caller = Principal("user-a", ISSUER, frozenset({Role.CUSTOMER}))
    verified.put("t", {"sub": "user-a", "exp": clock.now + 3600}, caller)
    clock.now += 59
    assert verified.get("t") is caller
    clock.now += 1
    assert verified.get("t") is None
    assert len(verified) == 0
