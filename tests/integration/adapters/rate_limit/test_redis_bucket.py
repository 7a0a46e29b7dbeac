"""The token bucket in the real Redis on 127.0.0.1: shared by every instance."""

from __future__ import annotations

import uuid

from server.adapters.rate_limit import RedisTokenBucket
from tests.support.server_process import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_buckets_are_shared_between_instances() -> None:
    first = RedisTokenBucket(REDIS_URL, rate=0.01, burst=2)
    second = RedisTokenBucket(REDIS_URL, rate=0.01, burst=2)
    key, other = f"test-{uuid.uuid4()}", f"test-{uuid.uuid4()}"
    try:
        assert await first.take(key) == 0
        assert await second.take(key) == 0
        wait = await first.take(key)
        assert 90 < wait <= 100  # one token at 0.01/s, less the moments that passed
        assert await second.take(key) > 0
        assert await second.take(other) == 0
    finally:
        await first.close()
        await second.close()


async def test_without_redis_the_process_bucket_takes_over() -> None:
    bucket = RedisTokenBucket(f"redis://127.0.0.1:{free_port()}/0", rate=0.01, burst=1)
    try:
        assert await bucket.take("k") == 0
        assert await bucket.take("k") > 0
    finally:
        await bucket.close()
