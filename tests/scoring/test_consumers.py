"""Websocket tests with Channels' WebsocketCommunicator, through the real
ASGI application (origin check, session auth, routing), with a real Redis
for the read model and the in-memory channel layer."""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from gameapp.asgi import application
from scoring import broadcast, ranking
from scoring.consumers import dispatch_serially
from scoring.domain import Decision, PlayerTotal, Status, Submission
from scoring.live import LiveUpdater
from scoring.processing import BatchResult
from tests.waiting import wait_until_async

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_url"), pytest.mark.asyncio]

ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")


@pytest.fixture
def session_cookie(player):
    client = Client()
    client.force_login(player)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connect(path="/ws/leaderboard/", headers=(ORIGIN, HOST)):
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect()
    return communicator, connected


async def messages_before_marker(communicator, *, group: str) -> list[dict]:
    """What the socket receives before a marker sent to ``group`` now.

    That nothing arrives can only be checked up to some point. Here the point
    is a positive signal, not a guessed timeout: a channel's messages are
    delivered in order, so once the marker (sent after everything under test)
    has reached the socket, anything sent to it earlier has too.
    """
    marker = uuid.uuid4().hex
    await get_channel_layer().group_send(group, {"type": "leaderboard.delta", "marker": marker})
    before = []
    while (message := await communicator.receive_json_from(timeout=5)).get("marker") != marker:
        before.append(message)
    return before


def applied_batch(player_id: str, name: str, total: int, version: int = 1) -> BatchResult:
    submission = Submission(id=f"s-{player_id}-{version}", player_id=player_id, player_name=name,
                            task="warm-up-sums", submitted_at=datetime.now(UTC))
    result = BatchResult()
    result.applied = [Decision(submission, Status.APPLIED, points=10)]
    result.totals = {player_id: PlayerTotal(player_id=player_id, player_name=name, total=total, version=version,
                                            reached_at_ms=version)}
    return result


async def test_snapshot_on_connect_lists_the_top_players():
    await sync_to_async(ranking.boards_update)([
        PlayerTotal(player_id="1", player_name="Ada", total=50, version=1),
        PlayerTotal(player_id="2", player_name="Bob", total=20, version=1)])
    communicator, connected = await connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["window"] == "all"
    assert [(e["rank"], e["player"], e["total"]) for e in snapshot["entries"]] == [(1, "Ada", 50), (2, "Bob", 20)]
    assert snapshot["seq"] >= 1 and snapshot["me"] is None
    await communicator.disconnect()


async def test_deltas_follow_the_snapshot_with_a_higher_seq():
    communicator, _ = await connect("/ws/leaderboard/?window=all")
    snapshot = await communicator.receive_json_from()
    await sync_to_async(LiveUpdater().after_batch)(applied_batch("9", "Cy", 40))
    delta = await communicator.receive_json_from()
    assert delta["type"] == "delta" and delta["window"] == "all"
    assert delta["seq"] > snapshot["seq"]
    assert delta["changes"] == [{"rank": 1, "player_id": "9", "player": "Cy", "total": 40}]
    assert [e["player_id"] for e in delta["joined"]] == ["9"]
    assert [e["player_id"] for e in delta["top"]] == ["9"]
    await communicator.disconnect()


async def test_a_players_own_socket_receives_their_submission_outcomes(player, session_cookie):
    communicator, connected = await connect(headers=(ORIGIN, HOST, session_cookie))
    assert connected
    await communicator.receive_json_from()  # snapshot
    await sync_to_async(LiveUpdater().after_batch)(applied_batch(str(player.pk), "Ada", 10))
    messages = [await communicator.receive_json_from() for _ in range(3)]
    assert sorted(m["type"] for m in messages) == ["delta", "rank.change", "submission"]
    submission = next(m for m in messages if m["type"] == "submission")["submission"]
    assert (submission["status"], submission["points"], submission["total"], submission["rank"]) == (
        "applied", 10, 10, 1)
    await communicator.disconnect()


async def test_an_anonymous_socket_never_receives_a_players_messages(player):
    communicator, connected = await connect()
    assert connected
    await communicator.receive_json_from()
    await sync_to_async(LiveUpdater().after_batch)(applied_batch(str(player.pk), "Ada", 10))
    delta = await communicator.receive_json_from()
    assert delta["type"] == "delta"
    # Was receive_nothing(timeout=0.3): a player message sent to this socket
    # by mistake would come before the marker.
    assert await messages_before_marker(communicator, group=broadcast.leaderboard_group("all")) == []
    await communicator.disconnect()


async def test_a_socket_from_another_origin_is_refused():
    communicator, connected = await connect(headers=((b"origin", b"http://evil.example"), HOST))
    assert not connected


async def test_an_unknown_window_is_refused():
    communicator, connected = await connect("/ws/leaderboard/?window=year")
    assert not connected or (await communicator.receive_output())["type"] == "websocket.close"


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/leaderboard/extra/", "/", "/ws/nope/\n"])
async def test_an_unknown_path_is_refused_without_an_error_logged(path, caplog):
    communicator, connected = await connect(path)
    assert not connected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_snapshot_without_redis_falls_back_to_dynamodb(settings, table):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    communicator, connected = await connect()
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["degraded"] is True and snapshot["seq"] == 0
    await communicator.disconnect()


@pytest.mark.parametrize("frame", [{"text_data": "x"}, {"text_data": "{\"type\": "}, {"bytes_data": b"\x00\x01"},
                                   {"text_data": "[" * 5000 + "]" * 5000}])
async def test_a_frame_that_is_not_json_text_is_answered_and_the_socket_stays_open(frame):
    communicator, _ = await connect()
    await communicator.receive_json_from()  # snapshot
    await communicator.send_to(**frame)
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and "JSON" in error["detail"]
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_a_consumer_that_crashes_still_leaves_its_groups(player, session_cookie, monkeypatch):
    from scoring.consumers import LeaderboardConsumer

    layer = get_channel_layer()
    await layer.flush()

    async def crash(self, content, **kwargs):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(LeaderboardConsumer, "receive_json", crash)
    communicator, _ = await connect(headers=(ORIGIN, HOST, session_cookie))
    await communicator.receive_json_from()  # snapshot
    groups = [broadcast.leaderboard_group("all"), broadcast.player_group(str(player.pk))]
    assert all(layer.groups.get(group) for group in groups)
    await communicator.send_json_to({"type": "ping"})
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        await communicator.receive_output()
    # disconnect() never ran, yet nothing is left in the groups (in Redis
    # they would stay until group_expiry).
    assert not any(layer.groups.get(group) for group in groups)


async def test_a_socket_open_longer_than_the_group_expiry_still_gets_deltas(settings, redis_url):
    # The real Redis layer, with a group_expiry of 2 s instead of a day.
    expiry = 2
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [redis_url], "group_expiry": expiry}}}
    communicator, connected = await connect()
    joined_by = time.time()  # the consumer joins its group before it accepts
    assert connected
    await communicator.receive_json_from()  # the snapshot
    # Time passing is the condition here. Wait (rather than sleep twice the
    # expiry) until channels_redis would drop the membership made at connect:
    # group_send discards members added at or before int(now) - group_expiry,
    # and the group's key expires too. From then on, only a renewed
    # membership can carry the delta.
    await wait_until_async(lambda: int(time.time()) - expiry >= joined_by, timeout=expiry + 5,
                           message="the clock never passed the connect-time membership's expiry")
    await get_channel_layer().group_send(broadcast.leaderboard_group("all"),
                                         {"type": "leaderboard.delta", "window": "all", "seq": 99})
    delta = await communicator.receive_json_from(timeout=3)
    assert (delta["type"], delta["seq"]) == ("delta", 99)
    await communicator.disconnect()


async def test_snapshots_and_deltas_carry_the_pipelines_freshness():
    communicator, _ = await connect("/ws/leaderboard/?window=all")
    snapshot = await communicator.receive_json_from()
    assert snapshot["pipeline"] == {"lag_ms": None, "as_of": None} and snapshot["heartbeat_at"] is None
    batch = applied_batch("9", "Cy", 40)
    submitted = batch.applied[0].submission.submitted_at.timestamp()
    clock = iter([submitted + 1.25]).__next__  # applied 1.25 s after it was accepted
    await sync_to_async(LiveUpdater(clock=clock).after_batch)(batch)
    delta = await communicator.receive_json_from()
    assert delta["pipeline"]["lag_ms"] == 1250
    applied_at = datetime.fromisoformat(delta["pipeline"]["as_of"].replace("Z", "+00:00"))
    assert abs(applied_at.timestamp() - (submitted + 1.25)) < 0.001
    assert (delta["applied"], [a["player"] for a in delta["activity"]]) == (1, ["Cy"])
    await communicator.disconnect()
    communicator, _ = await connect("/ws/leaderboard/?window=all")
    again = await communicator.receive_json_from()
    assert again["pipeline"] == delta["pipeline"] and again["heartbeat_at"] == delta["pipeline"]["as_of"]
    await communicator.disconnect()


async def test_a_workers_heartbeat_reaches_every_board():
    sockets = [(await connect(f"/ws/leaderboard/?window={w}"))[0] for w in ("all", "week", "day")]
    for s in sockets:
        await s.receive_json_from()  # snapshot
    await sync_to_async(LiveUpdater(clock=lambda: 1_800_000_000.5).heartbeat)()
    for s in sockets:
        beat = await s.receive_json_from()
        assert beat == {"type": "heartbeat", "at": "2027-01-15T08:00:00.500Z",
                        "pipeline": {"lag_ms": None, "as_of": None}}
        await s.disconnect()


@pytest.mark.usefixtures("table")
async def test_a_socket_that_reconnected_before_the_boards_were_rebuilt_gets_a_new_snapshot():
    # Redis came back empty; a browser reconnected at once and read the empty
    # board. The deltas the boards missed are gone, so the heal must tell it.
    from scoring import store

    socket, _ = await connect()
    assert (await socket.receive_json_from())["entries"] == []
    for player_id, total in (("1", 50), ("2", 20)):
        await sync_to_async(store.total_put_if_version)(total=PlayerTotal(
            player_id=player_id, player_name=f"P{player_id}", total=total, version=1, reached_at_ms=1,
            on_leaderboard=True), expected_version=0)
    await sync_to_async(store.boards_stale_mark)(now_ms=int(time.time() * 1000))
    assert await sync_to_async(LiveUpdater().heal_if_stale)() is True
    snapshot = await socket.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot" and snapshot["window"] == "all"
    assert [(e["player_id"], e["total"]) for e in snapshot["entries"]] == [("1", 50), ("2", 20)]
    await socket.disconnect()


async def test_a_rank_change_reaches_only_the_socket_of_its_board(player, session_cookie):
    day, _ = await connect("/ws/leaderboard/?window=day", headers=(ORIGIN, HOST, session_cookie))
    await day.receive_json_from()
    message = {"type": "rank.change", "window": "all", "rank": 1, "previous_rank": 2, "passed": [],
               "passed_by": [], "entered_top": None, "left_top": None}
    await get_channel_layer().group_send(broadcast.player_group(str(player.pk)), message)
    assert await messages_before_marker(day, group=broadcast.player_group(str(player.pk))) == []
    all_time, _ = await connect("/ws/leaderboard/?window=all", headers=(ORIGIN, HOST, session_cookie))
    await all_time.receive_json_from()
    await get_channel_layer().group_send(broadcast.player_group(str(player.pk)), message)
    assert await all_time.receive_json_from() == message
    await day.disconnect()
    await all_time.disconnect()


async def test_every_batch_that_decides_sets_the_lag_and_last_batch_gauges():
    # A batch of only rejections changes no total, but the consumer is
    # working: the stall alert must not take it for a dead one.
    from scoring import metrics

    submission = Submission(id="s-rejected", player_id="9", player_name="Cy", task="warm-up-sums",
                            submitted_at=datetime.now(UTC))
    rejected = BatchResult()
    rejected.rejected = [Decision(submission, Status.REJECTED, points=0, error="unknown task")]
    at = submission.submitted_at.timestamp() + 2.5
    await sync_to_async(LiveUpdater(clock=lambda: at).after_batch)(rejected)
    assert metrics.PIPELINE_LAST_BATCH._value.get() == pytest.approx(at, abs=0.001)
    assert metrics.PIPELINE_LAG._value.get() == pytest.approx(2.5, abs=0.001)
    await sync_to_async(LiveUpdater(clock=lambda: at + 60).after_batch)(BatchResult())  # only skipped records
    assert metrics.PIPELINE_LAST_BATCH._value.get() == pytest.approx(at, abs=0.001)


async def test_a_delta_sent_while_the_snapshot_is_read_arrives_after_it(monkeypatch):
    """The socket joins its board's group before it reads the snapshot, so a
    delta can reach its channel meanwhile: it is dispatched after the
    connect, never before the socket is accepted or ahead of the snapshot."""
    from asgiref.sync import async_to_sync

    from scoring import selectors

    real = selectors.leaderboard_snapshot

    def snapshot_with_a_delta_meanwhile(**kwargs):
        async_to_sync(get_channel_layer().group_send)(broadcast.leaderboard_group("all"),
                                                      {"type": "leaderboard.delta", "marker": "meanwhile"})
        return real(**kwargs)

    monkeypatch.setattr(selectors, "leaderboard_snapshot", snapshot_with_a_delta_meanwhile)
    communicator, connected = await connect()
    assert connected
    first, second = await communicator.receive_json_from(), await communicator.receive_json_from()
    assert first["type"] == "snapshot"
    assert (second["type"], second["marker"]) == ("delta", "meanwhile")
    await communicator.disconnect()


class Sources:
    """Two message sources for dispatch_serially (a socket's and its
    channel's), and a dispatch that holds on a "slow" message until released."""

    def __init__(self):
        self.client, self.layer = asyncio.Queue(), asyncio.Queue()
        self.log, self.in_dispatch, self.release = [], asyncio.Event(), asyncio.Event()

    async def dispatch(self, message):
        self.log.append(("start", message))
        if message in ("slow", "slow stop"):
            self.in_dispatch.set()
            await self.release.wait()
        if message == "slow stop":
            raise StopConsumerError(message)
        self.log.append(("end", message))

    async def from_layer(self):
        item = await self.layer.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def start_slow(self, message="slow"):
        loop = asyncio.ensure_future(dispatch_serially([self.client.get, self.from_layer], self.dispatch))
        await self.client.put(message)
        await self.in_dispatch.wait()
        return loop


async def let_other_tasks_run():
    for _ in range(10):
        await asyncio.sleep(0)


async def test_dispatch_serially_hands_on_one_message_at_a_time():
    sources = Sources()
    loop = await sources.start_slow()
    await sources.layer.put("delta")
    await let_other_tasks_run()
    assert sources.log == [("start", "slow")]  # the delta waits
    sources.release.set()
    await sources.layer.put(StopConsumerError())
    with pytest.raises(StopConsumerError):
        await loop
    assert sources.log == [("start", "slow"), ("end", "slow"), ("start", "delta"), ("end", "delta")]


async def test_a_source_that_fails_during_a_dispatch_fails_the_loop_after_it():
    """As in Channels' loop: a channel layer that loses its connection while
    a message is being handled ends the consumer once that one is done."""
    sources = Sources()
    loop = await sources.start_slow()
    await sources.layer.put(RuntimeError("connection lost"))
    await let_other_tasks_run()
    assert not loop.done()
    sources.release.set()
    with pytest.raises(RuntimeError, match="connection lost"):
        await loop
    assert sources.log == [("start", "slow"), ("end", "slow")]


class StopConsumerError(Exception):
    pass


async def test_after_a_dispatch_ends_the_loop_nothing_else_is_dispatched():
    """A disconnect's handler raises StopConsumer: a delta that was waiting
    for it must not be sent to the closed socket afterwards."""
    sources = Sources()
    loop = await sources.start_slow("slow stop")
    await sources.layer.put("delta")
    await let_other_tasks_run()
    sources.release.set()
    with pytest.raises(StopConsumerError):
        await loop
    assert sources.log == [("start", "slow stop")]


async def test_a_source_cancelled_on_its_own_ends_the_loop():
    sources = Sources()
    loop = asyncio.ensure_future(dispatch_serially([sources.client.get, sources.from_layer], sources.dispatch))
    await sources.layer.put(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, timeout=5)


@pytest.fixture
def clock(monkeypatch):
    """The boards' and snapshots' time, set by the test: {"now": datetime},
    from Sunday 2026-12-13 23:59 UTC, a minute before a new day and week."""
    from scoring import selectors

    clock = {"now": datetime(2026, 12, 13, 23, 59, tzinfo=UTC)}
    monkeypatch.setattr(ranking, "utcnow", lambda: clock["now"])
    monkeypatch.setattr(selectors, "utcnow", lambda: clock["now"])
    return clock


def batch_on(player_id: str, name: str, total: int, period: str, version: int) -> BatchResult:
    """A batch that puts a player's total on a day's or week's board."""
    result = applied_batch(player_id, name, total, version)
    result.totals[player_id].windows[period] = total
    return result


async def test_a_new_day_replaces_the_board_at_its_first_delta_and_a_late_one_of_the_old_day_is_dropped(clock):
    await sync_to_async(LiveUpdater().after_batch)(batch_on("1", "Ann", 50, "day:2026-12-13", 1))
    socket, _ = await connect("/ws/leaderboard/?window=day")
    old = await socket.receive_json_from()
    assert (old["board"], old["seq"], [e["player"] for e in old["entries"]]) == ("day:2026-12-13", 1, ["Ann"])

    clock["now"] = datetime(2026, 12, 14, 0, 1, tzinfo=UTC)
    await sync_to_async(LiveUpdater().after_batch)(batch_on("2", "Bob", 70, "day:2026-12-14", 1))
    # The new board's seq starts again at 1, below the old one's: the browser
    # would drop it as a delta, so the socket sends the new board whole.
    new = await socket.receive_json_from(timeout=5)
    assert (new["type"], new["board"], new["seq"]) == ("snapshot", "day:2026-12-14", 1)
    assert [e["player"] for e in new["entries"]] == ["Bob"]

    clock["now"] = datetime(2026, 12, 13, 23, 59, 59, tzinfo=UTC)  # a batch of the old day, delivered late
    await sync_to_async(LiveUpdater().after_batch)(batch_on("1", "Ann", 60, "day:2026-12-13", 2))
    clock["now"] = datetime(2026, 12, 14, 0, 2, tzinfo=UTC)
    assert await messages_before_marker(socket, group=broadcast.leaderboard_group("day")) == []
    await socket.disconnect()


async def test_a_quiet_week_is_replaced_by_the_new_weeks_board_within_a_heartbeat(clock):
    await sync_to_async(LiveUpdater().after_batch)(batch_on("1", "Ann", 50, "week:2026-W50", 1))
    socket, _ = await connect("/ws/leaderboard/?window=week")
    assert (await socket.receive_json_from())["board"] == "week:2026-W50"
    await sync_to_async(LiveUpdater(clock=lambda: clock["now"].timestamp()).heartbeat)()
    assert (await socket.receive_json_from())["type"] == "heartbeat"  # the same week: nothing else

    clock["now"] = datetime(2026, 12, 14, 0, 0, 30, tzinfo=UTC)  # Monday, and nobody has played yet
    await sync_to_async(LiveUpdater(clock=lambda: clock["now"].timestamp()).heartbeat)()
    new = await socket.receive_json_from(timeout=5)
    assert (new["type"], new["board"], new["entries"]) == ("snapshot", "week:2026-W51", [])
    assert (await socket.receive_json_from())["type"] == "heartbeat"
    await socket.disconnect()
