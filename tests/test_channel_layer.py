"""The Redis channel layers, as configured, against a real Redis.

- A socket with nothing to receive keeps waiting, whatever redis-py's read
  timeout (redis/redis-py#4091: with redis-py 8, channels_redis's 5 s
  BZPOPMIN outlived the 5 s socket timeout and killed idle consumers).
- The pub/sub layer (the default) subscribes once per process, and when its
  connection to Redis drops, every channel's receive fails instead of
  missing messages silently (gameapp/channel_layer.py).
"""

import asyncio
import importlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from gameapp.channel_layer import RedisConnectionLost, RedisPubSubChannelLayer


def configured(monkeypatch, redis_url: str, layer: str | None) -> dict:
    """CHANNEL_LAYERS["default"] as the settings build it for this Redis
    and CHANNEL_LAYER (None: unset)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    if layer is None:
        monkeypatch.delenv("CHANNEL_LAYER", raising=False)
    else:
        monkeypatch.setenv("CHANNEL_LAYER", layer)
    import gameapp.settings.base as base

    config = importlib.reload(base).CHANNEL_LAYERS["default"]
    monkeypatch.undo()
    importlib.reload(base)
    return config


def run(coroutine):
    # A loop of its own, in a thread of its own: the session's browser
    # (Playwright's sync API) may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def core_layer(redis_server, monkeypatch):
    config = configured(monkeypatch, redis_server, "core")
    assert config["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    return RedisChannelLayer(**config["CONFIG"])


@pytest.fixture
def pubsub_config(redis_server, monkeypatch):
    config = configured(monkeypatch, redis_server, "pubsub")
    assert config["BACKEND"] == "gameapp.channel_layer.RedisPubSubChannelLayer"
    return config["CONFIG"]


@pytest.fixture
def pubsub_sockets(pubsub_config, redis_url, settings):
    """The websocket app, as deployed, on the pub/sub layer (the suite's
    settings use an in-memory one): a function opening a board socket, and
    the layer."""
    from channels.layers import channel_layers
    from channels.testing import WebsocketCommunicator

    from gameapp.asgi import application

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "gameapp.channel_layer.RedisPubSubChannelLayer",
                                           "CONFIG": pubsub_config}}
    channel_layers.backends.clear()

    def socket():
        return WebsocketCommunicator(application, "/ws/leaderboard/?window=all",
                                     headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])

    yield socket, channel_layers["default"]
    channel_layers.backends.clear()


def test_the_default_layer_is_pubsub(redis_server, monkeypatch):
    assert configured(monkeypatch, redis_server, None) == configured(monkeypatch, redis_server, "pubsub")


def test_the_read_timeout_outlasts_the_blocking_receive(core_layer):
    assert core_layer.hosts[0]["socket_timeout"] > core_layer.brpop_timeout


def test_an_idle_receive_keeps_waiting_past_the_blocking_pop(core_layer):
    async def idle():
        channel = await core_layer.new_channel()
        try:
            # Longer than one BZPOPMIN (5 s) and redis-py 8's default read
            # timeout (5 s): nothing arrives, so the wait must end by our
            # deadline, not by a Redis error.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(core_layer.receive(channel), timeout=core_layer.brpop_timeout + 2)
        finally:
            await core_layer.flush()
            await core_layer.close_pools()

    run(idle())


def test_an_idle_pubsub_receive_keeps_waiting_past_the_socket_timeout(pubsub_config):
    # The same socket timeout as configured would make this test 15 s long;
    # 1 s shows the same thing: the subscription's reads are polls with a
    # timeout of their own, and an idle one is not an error.
    host = {**pubsub_config["hosts"][0], "socket_timeout": 1}
    layer = RedisPubSubChannelLayer(**{**pubsub_config, "hosts": [host]})

    async def idle():
        channel = await layer.new_channel()
        await layer.group_add("leaderboard.all", channel)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(channel), timeout=3)
            # Still subscribed: a message sent now arrives.
            receiving = asyncio.ensure_future(layer.receive(channel))
            await layer.group_send("leaderboard.all", {"type": "leaderboard.delta", "seq": 1})
            assert (await asyncio.wait_for(receiving, timeout=5))["seq"] == 1
        finally:
            await layer.flush()

    run(idle())


def test_a_group_send_is_one_message_per_process_not_per_socket(pubsub_config, redis_server):
    # Two layers stand for two web processes: three sockets in all.
    first, second, sender = (RedisPubSubChannelLayer(**pubsub_config) for _ in range(3))

    async def fan_out():
        channels = [(first, await first.new_channel()), (first, await first.new_channel()),
                    (second, await second.new_channel())]
        for layer, channel in channels:
            await layer.group_add("leaderboard.all", channel)
        try:
            subscribers = redis.Redis.from_url(redis_server).pubsub_numsub("asgi__group__leaderboard.all")
            assert subscribers == [(b"asgi__group__leaderboard.all", 2)]
            await sender.group_send("leaderboard.all", {"type": "leaderboard.delta", "seq": 7})
            got = [await asyncio.wait_for(layer.receive(channel), timeout=5) for layer, channel in channels]
            assert [message["seq"] for message in got] == [7, 7, 7]
        finally:
            for layer in (first, second, sender):
                await layer.flush()

    run(fan_out())


async def expect_lost(receiving, *, timeout=15):
    with pytest.raises(RedisConnectionLost):
        await asyncio.wait_for(receiving, timeout=timeout)


async def subscribed_channel(layer):
    """A channel in the group once Redis accepts the subscription again."""
    deadline = time.monotonic() + 15
    while True:
        try:
            channel = await layer.new_channel()
            await layer.group_add("leaderboard.all", channel)
            return channel
        except (ConnectionError, OSError, redis.exceptions.ConnectionError):
            assert time.monotonic() < deadline, "the layer never subscribed again"
            await asyncio.sleep(0.2)


async def assert_delivered_once_subscribed_again(layer, seq: int) -> None:
    """A new member of the group, once Redis takes the subscription again,
    receives what is sent to it."""
    channel = await subscribed_channel(layer)
    receiving = asyncio.ensure_future(layer.receive(channel))
    await layer.group_send("leaderboard.all", {"type": "leaderboard.delta", "seq": seq})
    assert (await asyncio.wait_for(receiving, timeout=5))["seq"] == seq


def test_redis_down_fails_every_receive_and_the_next_subscription_works(pubsub_config, own_redis):
    layer = RedisPubSubChannelLayer(**{**pubsub_config, "hosts": [{**pubsub_config["hosts"][0],
                                                                   "address": own_redis.url}]})

    async def scenario():
        channels = [await layer.new_channel() for _ in range(2)]
        for channel in channels:
            await layer.group_add("leaderboard.all", channel)
        # Each consumer waits in receive all the time, as Channels' consumers do.
        receiving = [asyncio.ensure_future(layer.receive(channel)) for channel in channels]
        try:
            own_redis.stop()
            for waiting in receiving:
                await expect_lost(waiting)
            own_redis.start()
            await assert_delivered_once_subscribed_again(layer, seq=2)
        finally:
            await layer.flush()

    run(scenario())


async def kill_in_redis(layer, redis_url):
    assert redis.Redis.from_url(redis_url).client_kill_filter(_type="pubsub") >= 1


async def disconnect_in_client(layer, redis_url):
    # redis-py's next read connects again (and would resubscribe) without
    # raising anything: the path a silent reconnection takes.
    await layer._get_layer()._shards[0]._pubsub.connection.disconnect()


@pytest.mark.parametrize("drop", [kill_in_redis, disconnect_in_client])
def test_a_dropped_subscription_connection_fails_the_receives(pubsub_config, redis_server, drop):
    # Whether or not redis-py reconnects by itself, what was published in
    # between is gone: the receivers must hear of it.
    layer = RedisPubSubChannelLayer(**pubsub_config)

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("leaderboard.all", channel)
        receiving = asyncio.ensure_future(layer.receive(channel))
        try:
            await drop(layer, redis_server)
            await expect_lost(receiving)
            await assert_delivered_once_subscribed_again(layer, seq=3)
        finally:
            await layer.flush()

    run(scenario())


@pytest.mark.django_db(transaction=True)  # Channels closes old database connections around a socket's events
def test_sockets_closed_while_updates_flow_leave_no_channel_behind(pubsub_sockets, redis_server):
    """Through the real websocket consumer: a socket that closes while board
    updates keep coming must not leave its queue in the process or its
    subscription in Redis (channels_redis forgets a channel only when its
    receive is cancelled while waiting)."""
    from scoring import broadcast

    new_socket, layer = pubsub_sockets
    specific = redis.Redis.from_url(redis_server)

    async def scenario():
        group = broadcast.leaderboard_group("all")
        stop = asyncio.Event()

        async def updates():
            seq = 10**6
            while not stop.is_set():
                seq += 1
                await layer.group_send(group, {"type": "leaderboard.delta", "window": "all", "seq": seq})
                await asyncio.sleep(0.001)  # a flood, but one a socket can follow (MAX_QUEUED)

        sender = asyncio.ensure_future(updates())
        try:
            for _ in range(10):
                socket = new_socket()
                assert (await socket.connect())[0]
                assert (await socket.receive_json_from(timeout=10))["type"] == "snapshot"
                assert (await socket.receive_json_from(timeout=10))["type"] == "delta"  # updates are flowing
                await socket.disconnect()
        finally:
            stop.set()
            await sender
        inner = layer._get_layer()
        deadline = time.monotonic() + 5
        while inner.channels and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the last socket's cleanup may still be on its way
        left = [c for c in specific.pubsub_channels() if b"specific" in c]
        assert (list(inner.channels), left) == ([], [])
        await layer.flush()

    run(scenario())


def test_a_channel_that_falls_too_far_behind_is_told_so_and_its_backlog_dropped(pubsub_config, monkeypatch):
    from gameapp import channel_layer
    from gameapp.channel_layer import ChannelTooSlow

    monkeypatch.setattr(channel_layer, "MAX_QUEUED", 5)
    layer = RedisPubSubChannelLayer(**pubsub_config)

    async def scenario():
        slow, keeping_up = await layer.new_channel(), await layer.new_channel()
        for channel in (slow, keeping_up):
            await layer.group_add("leaderboard.all", channel)
        try:
            # A reader that keeps up gets all eight, each before the next is
            # sent; by then the slow one's queue has seen them too (one
            # delivery loop for both).
            for seq in range(1, 9):
                await layer.group_send("leaderboard.all", {"type": "leaderboard.delta", "seq": seq})
                assert (await asyncio.wait_for(layer.receive(keeping_up), timeout=5))["seq"] == seq
            with pytest.raises(ChannelTooSlow):
                await asyncio.wait_for(layer.receive(slow), timeout=5)
            # What came after the notice is there; what waited before it is not.
            assert (await asyncio.wait_for(layer.receive(slow), timeout=5))["seq"] == 7
        finally:
            await layer.flush()

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_socket_the_layer_can_no_longer_serve_is_closed_for_the_browser_to_reconnect(pubsub_sockets):
    """Not an error with a traceback for each socket: a close with 1012
    (service restart), which the page answers by connecting again."""
    from gameapp import channel_layer

    new_socket, layer = pubsub_sockets

    async def scenario():
        socket = new_socket()
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=10))["type"] == "snapshot"
        (queue,) = layer._get_layer().channels.values()
        queue.put_nowait(channel_layer._TOO_SLOW)  # as the delivery loop leaves it
        assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 1012}
        await layer.flush()

    run(scenario())
