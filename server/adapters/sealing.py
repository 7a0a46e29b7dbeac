"""AES-256-GCM with named keys: seal with the current key, open with whichever sealed it.

Keys come from PAYMENTS_PROVIDER_LOG_KEYS as `id:base64key,...`, the current one
first; older ones stay listed while anything sealed with them is kept.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class KeyRingError(ValueError):
    """The key list is malformed; the message says how, never with a key."""


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class KeyRing:
    # key id -> 32-byte key; `current` seals.
    keys: dict[str, bytes] = field(repr=False)
    current: str

    @classmethod
    def parse(cls, text: str) -> KeyRing | None:
        """None when no key is configured (recording is then off)."""
        keys: dict[str, bytes] = {}
        order = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            key_id, _, encoded = item.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"key {key_id!r} is not base64") from None
            if not key_id or len(key) != 32 or key_id in keys:
                raise KeyRingError(f"key {key_id!r} must be a unique id and 32 bytes of base64")
            keys[key_id] = key
            order.append(key_id)
        return cls(keys, order[0]) if order else None

    def seal(self, plaintext: bytes, associated: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, associated)
        return Sealed(self.current, nonce, ciphertext)

    def open(self, sealed: Sealed, associated: bytes) -> bytes | None:
        """The plaintext; None when its key is no longer listed or it was tampered with."""
        key = self.keys.get(sealed.key_id)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, associated)
        except Exception:
            return None
