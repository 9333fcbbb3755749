"""The Lambda consumer keeps the live boards, through a Redis outage too.

The handler runs in this process, fed events shaped like Lambda's (the
powertools-shaped fixture event, and records read off the table's own stream),
with a real Redis of the test's own that it stops and starts again. The
boards are read back through the API and a websocket, as players see them.
"""

import copy
import json
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from gameapp.asgi import application
from scoring import lambda_handler, store

EVENT_PATH = Path(__file__).parent.parent / "events" / "dynamodb_stream_insert.json"


@pytest.fixture
def live_redis(own_redis, settings):
    settings.REDIS_URL = own_redis.url
    return own_redis


def fixture_event(**player_ids: str) -> dict:
    """The powertools-shaped fixture event, its players renamed (p-ada -> an id)."""
    text = EVENT_PATH.read_text()
    for old, new in player_ids.items():
        text = text.replace(f'"{old}"', f'"{new}"').replace(f'"PLAYER#{old}"', f'"PLAYER#{new}"')
    return json.loads(text)


def stored(event: dict) -> dict:
    """Put the event's SCORE items in the table, as the stream saw them."""
    for record in event["Records"]:
        store.client().put_item(TableName=store.table_name(), Item=record["dynamodb"]["NewImage"])
    return event


def stream_event() -> dict:
    """Every record on the table's stream, as Lambda delivers them: GetRecords'
    records with the creation time in epoch seconds and the source ARN."""
    client, arn = store.streams_client(), store.stream_arn()
    records = []
    for shard_id in store.shards_describe(client=client, stream_arn=arn):
        iterator = store.shard_iterator(client=client, stream_arn=arn, shard_id=shard_id)
        while iterator:
            got, iterator = store.records_get(client=client, iterator=iterator, limit=1000)
            if not got:
                break
            records += got
    return {"Records": [{**r, "eventSourceARN": arn, "dynamodb": {
        **r["dynamodb"], "ApproximateCreationDateTime": r["dynamodb"]["ApproximateCreationDateTime"].timestamp()}}
        for r in records]}


def board(client) -> list[tuple[str, int]]:
    """The all-time board as the API serves it, ties in any order."""
    return sorted((e["player"], e["total"]) for e in client.get("/api/leaderboard/").json())


def my_total(client) -> int | None:
    me = client.get("/api/leaderboard/me/").json()["me"]
    return me["total"] if me else None


def submit(client, task: str) -> None:
    assert client.post("/api/scores/", {"task": task}, format="json").status_code == 202


@pytest.mark.django_db
@pytest.mark.usefixtures("table", "live_redis", "trusted")
def test_a_lambda_batch_shows_on_the_leaderboard_and_on_me(player, player_client):
    event = stored(fixture_event(**{"p-ada": str(player.pk)}))
    assert lambda_handler.handler(event, None) == {"batchItemFailures": []}
    # warm-up-sums is Easy (10), big-products is Hard (50).
    assert board(player_client) == [("Ada", 60), ("Bob", 60)]
    assert my_total(player_client) == 60


@pytest.mark.django_db
@pytest.mark.usefixtures("table", "live_redis", "trusted")
def test_records_read_off_the_tables_stream_reach_the_boards(player, player_client):
    for task in ("warm-up-sums", "warm-up-sums", "big-products"):
        submit(player_client, task)
    event = stream_event()
    assert len(event["Records"]) == 3
    assert lambda_handler.handler(event, None) == {"batchItemFailures": []}
    assert my_total(player_client) == 70
    # The handler's own writes (outcomes: MODIFYs) come back on the stream and change nothing.
    assert lambda_handler.handler(stream_event(), None) == {"batchItemFailures": []}
    assert my_total(player_client) == 70 and board(player_client) == [("Ada", 70)]


@pytest.mark.django_db
@pytest.mark.usefixtures("table", "trusted")
def test_a_redis_outage_fails_no_batch_and_the_next_invocation_heals_the_boards(live_redis, player,
                                                                                  player_client):
    submit(player_client, "warm-up-sums")
    assert lambda_handler.handler(stream_event(), None) == {"batchItemFailures": []}
    assert my_total(player_client) == 10

    live_redis.stop()
    during = stored(fixture_event(**{"p-ada": str(player.pk)}))
    assert lambda_handler.handler(during, None) == {"batchItemFailures": []}
    totals = store.totals_get_many(player_ids=[str(player.pk), "p-bob"])
    assert (totals[str(player.pk)].total, totals["p-bob"].total) == (70, 60)  # safe in DynamoDB
    assert store.boards_stale_get().misses == 1

    live_redis.start()  # empty: a restarted Redis lost every board, as after a failover
    later = copy.deepcopy(during)
    later["Records"] = []  # an invocation with nothing new for the boards still heals them
    assert lambda_handler.handler(later, None) == {"batchItemFailures": []}
    assert board(player_client) == [("Ada", 70), ("Bob", 60)]
    assert my_total(player_client) == 70
    assert store.boards_stale_get() is None


@pytest.mark.django_db
@pytest.mark.usefixtures("table", "live_redis")
def test_each_player_is_told_their_outcomes_with_total_and_rank(published):
    event = stored(fixture_event())
    assert lambda_handler.handler(event, None) == {"batchItemFailures": []}
    own = [(group, m["submission"]) for group, m in published if m["type"] == "player.submission"]
    assert sorted((g, s["id"], s["status"]) for g, s in own) == [
        ("player.p-ada", "sub-1", "applied"), ("player.p-ada", "sub-3", "applied"),
        ("player.p-bob", "sub-2", "applied"), ("player.p-bob", "sub-4", "applied")]
    # A tie at 60: ranks 1 and 2, one each, as the board has them.
    assert sorted({(g, s["total"], s["rank"]) for g, s in own}, key=lambda r: r[2]) in (
        [("player.p-ada", 60, 1), ("player.p-bob", 60, 2)], [("player.p-bob", 60, 1), ("player.p-ada", 60, 2)])
    # The fixture's tasks were played on 2026-11-26: no points in this week's or today's board.
    assert [m["window"] for _, m in published if m["type"] == "leaderboard.delta"] == ["all"]


@pytest.mark.django_db
@pytest.mark.usefixtures("table")
def test_during_a_redis_outage_players_are_still_told_their_outcomes(own_redis, settings, published):
    settings.REDIS_URL = own_redis.url
    own_redis.stop()
    assert lambda_handler.handler(stored(fixture_event()), None) == {"batchItemFailures": []}
    own = [m["submission"] for _, m in published if m["type"] == "player.submission"]
    assert len(own) == 4 and {(s["total"], s["rank"]) for s in own} == {(60, None)}
    assert not [m for _, m in published if m["type"] == "leaderboard.delta"]


@pytest.mark.django_db
@pytest.mark.usefixtures("table")
def test_a_miss_marked_while_healing_keeps_the_marker_for_the_next_heal(live_redis):
    seen = store.boards_stale_mark(now_ms=1_000)
    assert seen == store.boards_stale_get()  # the marker as the mark left it
    store.boards_stale_mark(now_ms=2_000)  # another process missed an update meanwhile
    assert not store.boards_stale_clear(seen=seen)
    now = store.boards_stale_get()
    assert (now.since_ms, now.misses) == (1_000, 2)
    assert store.boards_stale_clear(seen=now) and store.boards_stale_get() is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("table", "live_redis")
@pytest.mark.asyncio
async def test_a_lambda_batch_is_pushed_to_leaderboard_sockets():
    communicator = WebsocketCommunicator(application, "/ws/leaderboard/?window=all",
                                         headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["entries"] == []
    event = await sync_to_async(stored)(fixture_event())
    assert await sync_to_async(lambda_handler.handler)(event, None) == {"batchItemFailures": []}
    delta = await communicator.receive_json_from(timeout=5)
    assert delta["type"] == "delta" and delta["seq"] > snapshot["seq"]
    assert sorted((e["player"], e["total"]) for e in delta["top"]) == [("Ada", 60), ("Bob", 60)]
    await communicator.disconnect()
