"""Token buckets per caller: in Redis (shared by every instance) or in this process.

`take(key)` spends one token and answers 0, or answers how many seconds until a
token is back (nothing spent). Buckets start full (`burst` tokens) and refill at
`rate` tokens a second.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Protocol

import redis.asyncio as redis

from server.adapters.redis_connection import connect_redis

_log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def take(self, key: str) -> float: ...

    async def close(self) -> None: ...


class LocalTokenBucket:
    """One bucket per key in this process; for a single instance or without Redis."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._rate, self._burst, self._max_keys = rate, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def take(self, key: str) -> float:
        return self.take_now(key, time.monotonic())

    def take_now(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + max(0.0, now - at) * self._rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._rate
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory; a reset only ever lets callers in
        self._buckets[key] = (tokens, now)
        return wait

    async def close(self) -> None:
        """Nothing to release: the buckets live in this process."""


# Atomic refill-and-take on Redis's own clock, so every instance agrees.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisTokenBucket:
    """Buckets shared by every instance; falls back to this process's while Redis is away."""

    def __init__(self, url: str, rate: float, burst: int, prefix: str = "payments:rate:") -> None:
        self._client = connect_redis(url)
        self._script = self._client.register_script(_TAKE)
        self._rate, self._burst, self._prefix = rate, burst, prefix
        self._fallback = LocalTokenBucket(rate, burst)

    async def take(self, key: str) -> float:
        # Hashed: caller ids stay out of Redis, and keys have one short shape.
        name = self._prefix + hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            wait = await self._script(keys=[name], args=[self._rate, self._burst])
        except redis.RedisError as error:
            _log.warning("rate limit falls back to this process: %s", type(error).__name__)
            return await self._fallback.take(key)
        return float(wait)

    async def close(self) -> None:
        await self._client.aclose()
