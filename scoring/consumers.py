"""Websocket endpoints (Channels consumers). No domain logic here."""

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from scoring import broadcast, ranking, selectors
from scoring.domain import WINDOWS

logger = logging.getLogger(__name__)

# Close code for a bad request, in the 4000-4999 range kept for applications.
CLOSE_BAD_REQUEST = 4400
# "Service Restart" (RFC 6455 registry): the browser should connect again.
CLOSE_RECONNECT = 1012
_NOT_JSON = object()


async def dispatch_serially(sources: list[Callable[[], Awaitable[dict]]], dispatch) -> None:
    """Hand each message from any of ``sources`` to ``dispatch``, one
    dispatch at a time, until one of them raises (StopConsumer ends a
    consumer). What Channels' await_many_dispatch does, which waits with
    asyncio.wait and starts a new task for every message: for one board
    update to 1,000 sockets that was about half the web process's CPU, and
    its p99 delivery ~95 ms against ~60 ms this way (bench/fanout.py). Here
    each source has one task for the socket's life, and a lock keeps the
    dispatches one at a time, so a delta still waits for the connect that
    sends the snapshot. A source that fails does so once the dispatch in
    progress has finished, and once one has failed nothing more is
    dispatched, as in Channels' loop."""
    lock = asyncio.Lock()
    ended = False  # set, under the lock, by the first failure: nothing is dispatched after it

    async def pump(source):
        nonlocal ended
        while True:
            try:
                message = await source()
            except Exception:
                async with lock:
                    if ended:
                        return
                    ended = True
                    raise
            async with lock:
                if ended:
                    return
                try:
                    await dispatch(message)
                except BaseException:
                    ended = True
                    raise

    tasks = [asyncio.ensure_future(pump(source)) for source in sources]
    try:
        # A pump ends only when the loop does: by raising (StopConsumer
        # included), by being cancelled, or by returning after another failed.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def unknown_path_refuse(scope, receive, send) -> None:
    """The websocket route of every path no other route takes: the handshake
    is refused (a close before accept, which the server answers with 403).
    Channels' URLRouter raises ValueError for such a path instead, which the
    server logs as an error, with a traceback, and answers with 500.

    A plain ASGI app, not a consumer: refusing needs no channel, no
    database connection and no message after the first."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/leaderboard/?window=all|week|day``: a snapshot, then deltas.

    The snapshot is read after joining the group, so no delta can fall
    between the two; both carry the board's ``seq``, and the browser drops
    deltas not newer than its snapshot. A logged-in player's socket also
    joins their own group and receives their submissions' outcomes and
    their ``rank.change`` on this board. Every consumer worker's heartbeat
    comes as ``heartbeat``: a board that hears none for a while shows
    "delayed".
    """

    board = ""  # the board of the last snapshot sent (ranking.board_id)

    # Events the channel layer pushes. Their handlers only send to the socket.
    PUSHED = frozenset({"leaderboard.delta", "player.submission", "player.adjustment", "rank.change",
                        "pipeline.heartbeat"})

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler: a
        # trip to the one sync thread, per message, per socket, so one delta
        # to 1,000 sockets queued 1,000 of them (bench/fanout.py). The pushed
        # events never touch the database; the socket's own events still go
        # through Channels' dispatch.
        if message["type"] in self.PUSHED:
            await getattr(self, message["type"].replace(".", "_"))(message)
        else:
            await super().dispatch(message)

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        window = (query.get("window") or ["all"])[0]
        if window not in WINDOWS:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.window = window
        self.joined = [broadcast.leaderboard_group(window)]
        user = self.scope.get("user")
        self.player_id = str(user.pk) if user is not None and user.is_authenticated else None
        if self.player_id:
            self.joined.append(broadcast.player_group(self.player_id))
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.rejoining = asyncio.create_task(self._rejoin_groups())
        await self.accept()
        await self._send_snapshot()

    async def _send_snapshot(self):
        snapshot = await sync_to_async(selectors.leaderboard_snapshot)(window=self.window, player_id=self.player_id)
        self.board = snapshot["board"]
        await self.send_json({"type": "snapshot", "window": self.window, **snapshot})

    async def __call__(self, scope, receive, send):
        # AsyncConsumer.__call__ (Channels 4.3), with dispatch_serially in
        # place of Channels' await_many_dispatch: see there.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        # disconnect() runs only on a clean close. If a handler raises, the
        # consumer dies without it, and its group memberships would stay in
        # Redis until group_expiry (a day), each group_send still queueing
        # for a channel nobody reads.
        try:
            await dispatch_serially([receive, self.channel_receive], self.dispatch)
        except StopConsumer:
            pass
        except ConnectionError as exc:
            # The channel layer can no longer deliver to this socket (its
            # Redis connection dropped, or the socket fell too far behind:
            # gameapp/channel_layer.py): close it as a server restart does,
            # and the browser reconnects to a fresh snapshot. Not an error
            # with a traceback for every socket of the process.
            logger.info("Closing a %s board socket: %s", getattr(self, "window", "?"), exc)
            with contextlib.suppress(Exception):  # the browser may be gone already
                await self.close(code=CLOSE_RECONNECT)
        finally:
            await self._leave_groups()
            # The pub/sub layer forgets a channel (its queue, its Redis
            # subscription) only when a receive is cancelled while waiting;
            # one cancelled while its message waits for the dispatch lock
            # would leave both behind for the life of the process.
            delete_channel = getattr(self.channel_layer, "delete_channel", None)
            if delete_channel is not None:
                await delete_channel(self.channel_name)

    async def disconnect(self, code):
        await self._leave_groups()

    async def _rejoin_groups(self):
        """The channel layer forgets a group member after its group_expiry (a
        day by default), whether or not the socket is still open: a board
        left open on a wall screen would go quiet while still showing
        "Live". Joining again renews the membership."""
        every = getattr(self.channel_layer, "group_expiry", 86400) / 3
        while True:
            await asyncio.sleep(every)
            for group in self.joined:
                await self.channel_layer.group_add(group, self.channel_name)

    async def _leave_groups(self):
        rejoining = getattr(self, "rejoining", None)
        if rejoining is not None:
            rejoining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rejoining
        joined, self.joined = getattr(self, "joined", []), []
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # A binary or non-JSON frame is a client's mistake: say so and keep
        # the socket (the base class raises, which kills the consumer).
        try:
            content = await self.decode_json(text_data) if text_data else _NOT_JSON
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
            content = _NOT_JSON
        if content is _NOT_JSON:
            await self.send_json({"type": "error", "detail": "Expected a JSON text frame."})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        # The socket is server-to-browser; a browser may ping to keep it open.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def leaderboard_delta(self, event):
        board = event.get("board", self.board)
        if board != self.board:
            # A day's or a week's board is new at midnight UTC, and counts
            # its seq from 0 again, so the browser would drop its deltas as
            # older than the board it shows: a snapshot of the new board
            # instead. A delta of the board before it (a batch at 23:59
            # delivered late) is old news.
            if board > self.board:
                await self._send_snapshot()
            return
        await self.send(text_data=self._encoded_once(
            event, lambda: {"type": "delta", **{k: v for k, v in event.items() if k != "type"}}))

    async def leaderboard_rebuilt(self, event):
        """The boards were rebuilt from DynamoDB after a Redis outage
        (scoring/live.py): what this socket was sent may predate them, so a
        new snapshot replaces it, as on a reconnect. Through Channels'
        dispatch, not PUSHED: the read may reach the database."""
        await self._send_snapshot()

    async def player_submission(self, event):
        await self.send_json({"type": "submission", "submission": event["submission"]})

    async def player_adjustment(self, event):
        await self.send_json({"type": "adjustment", "adjustment": event["adjustment"]})

    async def rank_change(self, event):
        # The player's group carries every board's changes; a socket shows one board.
        if event.get("window") == self.window:
            await self.send_json(event)

    async def pipeline_heartbeat(self, event):
        if self._boards_now(event)[self.window] > self.board:
            # The day or week ended with no batch since: the new board (empty,
            # or as far as it got) replaces the old one, within a heartbeat.
            await self._send_snapshot()
        await self.send(text_data=self._encoded_once(
            event, lambda: {"type": "heartbeat", "at": event["at"], "pipeline": event["pipeline"]}))

    _last_boards: tuple[dict | None, dict[str, str]] = (None, {})

    @classmethod
    def _boards_now(cls, event: dict) -> dict[str, str]:
        """Each window's current board (``ranking.board_id``), worked out
        once per heartbeat for all of this process's sockets, as
        ``_encoded_once`` encodes it once."""
        if cls._last_boards[0] is not event:
            cls._last_boards = (event, {w: ranking.board_id(w) for w in WINDOWS})
        return cls._last_boards[1]

    _last_encoded: tuple[dict | None, str] = (None, "")

    @classmethod
    def _encoded_once(cls, event: dict, content) -> str:
        """The text of a board's message, encoded once for all of this
        process's sockets: the pub/sub layer hands each the same dict
        (gameapp/channel_layer.py). Kept while it is the last one, so the
        identity cannot be reused."""
        if cls._last_encoded[0] is not event:
            cls._last_encoded = (event, json.dumps(content()))
        return cls._last_encoded[1]
