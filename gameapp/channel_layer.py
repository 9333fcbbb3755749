"""The channel layer: channels_redis's pub/sub layer, made to fail loudly
when its connection to Redis drops.

A group_send on the pub/sub layer is one PUBLISH, which Redis hands once to
each server process subscribed to the group; the process then fans it out to
its own sockets in memory. channels_redis's list-based RedisChannelLayer
writes one message per member socket instead.

The pub/sub layer of channels_redis 4.3 reconnects and resubscribes by itself
when its connection drops, and whatever was published meanwhile is lost
without a word (django/channels_redis#256; the on_disconnect hook meant for
this has not been called since 4.0, #406). With the list-based layer each
socket's blocking pop raised instead: the consumer died, the socket closed,
and the browser reconnected and read a fresh snapshot. This layer keeps that
behaviour: when the connection is lost, every channel of the process receives
an error, so each consumer ends the same way, and the next subscriptions open
a new connection.
"""

import asyncio
import contextlib
import logging

from channels_redis import pubsub
from redis import exceptions as redis_errors
from redis.asyncio.client import PubSub

logger = logging.getLogger(__name__)

# Put in a channel's queue in place of a message when the connection is lost.
_LOST = object()
# Put in a channel's queue, in place of what waits there, when its reader
# has fallen this far behind.
_TOO_SLOW = object()
# Messages one channel may have waiting in this process. A socket whose
# browser stopped reading, on a connection still open, would otherwise hold
# every board update from then on: past this many it is closed instead, and
# the browser reconnects to a fresh snapshot. A live socket is far below it
# (a board update a batch, a heartbeat every few seconds).
MAX_QUEUED = 500
_CONNECTION_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class RedisConnectionLost(ConnectionError):
    """The layer's subscription connection to Redis dropped: messages sent
    meanwhile may be lost, so the receiver must start over."""


class ChannelTooSlow(ConnectionError):
    """The channel's reader fell MAX_QUEUED messages behind: what waited was
    dropped, so the receiver must start over."""


class _ReconnectAwarePubSub(PubSub):
    async def on_connect(self, connection):
        # redis-py calls this on every reconnection (not the first connection)
        # to resubscribe. Resubscribing would hide the gap, so the shard is
        # told instead, and starts over with a new PubSub.
        self.reconnected = True


class _Shard(pubsub.RedisSingleShardConnection):
    def _ensure_redis(self):
        if self._redis is None:
            super()._ensure_redis()
            self._pubsub = self._new_pubsub()

    def _new_pubsub(self) -> _ReconnectAwarePubSub:
        pubsub = _ReconnectAwarePubSub(self._redis.connection_pool)
        pubsub.reconnected = False
        return pubsub

    async def _do_receiving(self):
        while True:
            lost = None
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                    if self._pubsub.reconnected:
                        lost = "reconnected"
                else:
                    await asyncio.sleep(0.1)
            except _CONNECTION_ERRORS as exc:
                lost = f"{type(exc).__name__}: {exc}"
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception:  # noqa: BLE001 - a bad message must not stop the receiving for every socket
                logger.exception("Unexpected exception in the channel layer's receive task")
                await asyncio.sleep(1)
            if lost:
                await self._start_over(lost)

    def _receive_message(self, message):
        # A group's message is decoded once for all of the process's members,
        # not once per socket: they share one dict, which handlers must not
        # change (scoring/consumers.py only reads it).
        if message is None:
            return
        name, data = message["channel"], message["data"]
        if isinstance(name, bytes):
            name = name.decode()
        layer = self.channel_layer
        if name in layer.channels:
            _deliver(layer.channels[name], data)
        elif name in layer.groups:
            decoded = layer.channel_layer.deserialize(data)
            for channel in layer.groups[name]:
                if channel in layer.channels:
                    _deliver(layer.channels[channel], decoded)

    async def _start_over(self, reason: str) -> None:
        """Fail every channel of the process and forget the subscriptions: the
        next group_add subscribes again on a new connection."""
        async with self._lock:
            logger.warning("Channel layer lost its Redis subscription connection (%s): closing this process's "
                           "%d channels so that their sockets reconnect", reason, len(self.channel_layer.channels))
            old, self._pubsub = self._pubsub, self._new_pubsub()
            self._subscribed_to = set()
            self.channel_layer.fail_all_channels()
        with contextlib.suppress(*_CONNECTION_ERRORS):
            await old.aclose()


def _deliver(queue: asyncio.Queue, message) -> None:
    """Queue a message for a channel's reader, or, past MAX_QUEUED waiting,
    drop what waits and leave the reader the notice that it fell behind."""
    if queue.qsize() < MAX_QUEUED:
        queue.put_nowait(message)
        return
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(_TOO_SLOW)


class _LoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [_Shard(shard.host, self) for shard in self._shards]

    async def _subscribe_to_channel(self, channel):
        # A socket that cannot subscribe (Redis down) must not leave its queue
        # behind: browsers retry every few seconds until Redis is back.
        try:
            await super()._subscribe_to_channel(channel)
        except BaseException:
            self.channels.pop(channel, None)
            raise

    async def delete_channel(self, channel) -> None:
        """Forget a channel whose reader has ended: its queue, and its
        subscription in Redis. channels_redis does this only when a receive
        is cancelled while waiting, which a reader ended otherwise misses."""
        if self.channels.pop(channel, None) is None:
            return
        with contextlib.suppress(*_CONNECTION_ERRORS):
            await self._get_shard(channel).unsubscribe(channel)

    def fail_all_channels(self) -> None:
        channels, self.channels, self.groups = self.channels, {}, {}
        for queue in channels.values():
            queue.put_nowait(_LOST)


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """channels_redis's pub/sub layer whose ``receive`` raises
    RedisConnectionLost once the subscription connection has dropped."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            pubsub._wrap_close(self, loop)
        return layer

    async def receive(self, channel):
        # Directly, not through the base class's __getattr__ proxy (a partial
        # and two more calls): every socket's every message comes this way.
        return await self._get_layer().receive(channel)

    async def delete_channel(self, channel) -> None:
        await self._get_layer().delete_channel(channel)

    def deserialize(self, message):
        if message is _LOST:
            raise RedisConnectionLost("the channel layer's connection to Redis dropped; messages may be lost")
        if message is _TOO_SLOW:
            raise ChannelTooSlow(f"the channel fell {MAX_QUEUED} messages behind; they were dropped")
        if isinstance(message, dict):  # a group's message, decoded once already
            return message
        return super().deserialize(message)
