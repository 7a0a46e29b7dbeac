"""Tokens for tests: HS256 with a shared secret, and RS256/ES256 keys served as a JWKS."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

# At least 32 bytes, as the server demands of HS256 secrets.
JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123456789"
ISSUER = "https://sso.example.test/realms/shop"
AUDIENCE = "payments"
# Staging and production refuse to start without a page-token key of their own.
PAGE_TOKEN_KEY = "e2e-page-token-key-0123456789abcdef01234"


def hs256_token(
    subject: str,
    roles: tuple[str, ...] = (),
    *,
    secret: str = JWT_SECRET,
    ttl: int = 600,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "roles": list(roles),
        **claims,
    }
    return jwt.encode(body, secret, algorithm="HS256")


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


class SigningKey:
    """A private key with its kid; `jwk()` is the public half as a JWKS entry."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.kid = f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}"
        self.private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if algorithm == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        text = (
            RSAAlgorithm.to_jwk(public)
            if isinstance(public, rsa.RSAPublicKey)
            else ECAlgorithm.to_jwk(public)
        )
        entry: dict[str, Any] = json.loads(text)
        return {**entry, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def keycloak_token(
        self,
        subject: str,
        realm_roles: tuple[str, ...] = (),
        *,
        ttl: int = 600,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
    ) -> str:
        """Shaped like a Keycloak access token: realm_access.roles, azp, typ."""
        now = int(time.time())
        body = {
            "exp": now + ttl,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": issuer,
            "aud": [audience, "account"],
            "sub": subject,
            "typ": "Bearer",
            "azp": "checkout-frontend",
            "realm_access": {"roles": ["offline_access", "default-roles-shop", *realm_roles]},
            "scope": "openid profile email",
            "preferred_username": f"user-{subject[:8]}",
        }
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


class JwksServer:
    """Serves {"keys": [...]} at /certs on a free local port and counts the fetches."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": [key.jwk() for key in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/certs"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
