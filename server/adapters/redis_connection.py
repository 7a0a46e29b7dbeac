"""One way to reach Redis: short timeouts, so a Redis outage costs a call at most a second."""

from __future__ import annotations

import redis.asyncio as redis


def connect_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
