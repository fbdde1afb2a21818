"""Shared fixtures of the scale-out tests: a unique name per test (Redis key prefix,
queue, PostgreSQL schemas), and skips that say which service did not answer."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not answers("127.0.0.1", 6379):
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    if not answers("127.0.0.1", 5672):
        pytest.skip("RabbitMQ does not answer on 127.0.0.1:5672")
    return AMQP_URL


@pytest.fixture
def pg_url() -> str:
    if not answers("127.0.0.1", 5432):
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    return PG_URL


@pytest.fixture
def unique() -> Iterator[str]:
    """A name no other test (or helper) uses: Redis prefix, queue, schema prefix."""
    name = "lsx" + uuid.uuid4().hex[:10]
    yield name
    if answers("127.0.0.1", 6379):
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
