"""The Redis channel layer, as configured, against a real Redis: a socket
with nothing to receive keeps waiting, whatever redis-py's default read
timeout (redis/redis-py#4091: with redis-py 8, channels_redis's 5 s
BZPOPMIN outlived the 5 s socket timeout and killed idle consumers)."""

import asyncio
import importlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels_redis.core import RedisChannelLayer


@pytest.fixture
def layer(redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server)
    import gameapp.settings.base as base

    config = importlib.reload(base).CHANNEL_LAYERS["default"]["CONFIG"]
    monkeypatch.undo()
    importlib.reload(base)
    return RedisChannelLayer(**config)


def test_the_read_timeout_outlasts_the_blocking_receive(layer):
    assert layer.hosts[0]["socket_timeout"] > layer.brpop_timeout


def test_an_idle_receive_keeps_waiting_past_the_blocking_pop(layer):
    async def idle():
        channel = await layer.new_channel()
        try:
            # Longer than one BZPOPMIN (5 s) and redis-py 8's default read
            # timeout (5 s): nothing arrives, so the wait must end by our
            # deadline, not by a Redis error.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(channel), timeout=layer.brpop_timeout + 2)
        finally:
            await layer.flush()
            await layer.close_pools()

    # A loop of its own, in a thread of its own: the session's browser
    # (Playwright's sync API) may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, idle()).result()
