"""The Redis leaderboard read model, on a real redis-server process."""

import os
from datetime import UTC, datetime

import pytest

from scoring import ranking
from scoring.domain import PlayerTotal

pytestmark = pytest.mark.usefixtures("redis_url")

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TODAY, WEEK = "day:2026-11-26", "week:2026-W48"


def total(player, points, version=1, reached=1_000, today=None, week=None):
    windows = {}
    if today is not None:
        windows[TODAY] = today
    if week is not None:
        windows[WEEK] = week
    return PlayerTotal(player_id=player, player_name=player.upper(), total=points, version=version,
                       reached_at_ms=reached, windows=windows)


def test_top_orders_by_total_and_ties_by_who_got_there_first():
    ranking.boards_update([total("late", 50, reached=2_000), total("early", 50, reached=1_000),
                           total("top", 90), total("low", 5)], now=NOW)
    entries = ranking._top(ranking.client(), "lb:all", 10)
    assert [(e.rank, e.player_id, e.total) for e in entries] == [
        (1, "top", 90), (2, "early", 50), (3, "late", 50), (4, "low", 5)]


def test_older_version_never_overwrites_a_newer_one():
    ranking.boards_update([total("a", 30, version=5)], now=NOW)
    ranking.boards_update([total("a", 10, version=4)], now=NOW)
    assert ranking._entry(ranking.client(), "lb:all", "a").total == 30


def test_change_reports_new_ranks_and_who_joined_and_left_the_top(settings):
    settings.LEADERBOARD_SIZE = 2
    ranking.boards_update([total("a", 30), total("b", 20), total("c", 10)], now=NOW)
    [change_all] = [c for c in ranking.boards_update([total("c", 40, version=2)], now=NOW) if c.window == "all"]
    assert [(e.player_id, e.rank, e.total) for e in change_all.changes] == [("c", 1, 40)]
    assert [e.player_id for e in change_all.joined] == ["c"]
    assert change_all.left == [{"player_id": "b", "player": "B"}]
    assert [e.player_id for e in change_all.top] == ["c", "a"]
    assert change_all.seq >= 2


def test_windows_hold_only_their_own_points():
    ranking.boards_update([total("a", 100, today=10, week=40), total("b", 50, today=30, week=30)], now=NOW)
    r = ranking.client()
    assert [(e.player_id, e.total) for e in ranking._top(r, "lb:" + TODAY, 10)] == [("b", 30), ("a", 10)]
    assert [(e.player_id, e.total) for e in ranking._top(r, "lb:" + WEEK, 10)] == [("a", 40), ("b", 30)]
    assert [(e.player_id, e.total) for e in ranking._top(r, "lb:all", 10)] == [("a", 100), ("b", 50)]


def test_around_returns_neighbours_and_rank_is_exact():
    ranking.boards_update([total(f"p{i}", i * 10, reached=i) for i in range(1, 21)], now=NOW)
    r = ranking.client()
    me = ranking._entry(r, "lb:all", "p10")
    assert (me.rank, me.total) == (11, 100)


def test_rebuild_replaces_the_boards():
    ranking.boards_update([total("ghost", 999)], now=NOW)
    ranking.boards_rebuild([total("a", 10), total("b", 20)], now=NOW)
    assert [e.player_id for e in ranking._top(ranking.client(), "lb:all", 10)] == ["b", "a"]


def test_unreachable_redis_is_ranking_unavailable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(ranking.RankingUnavailable):
        ranking.top("all", 10)


@pytest.mark.usefixtures("table")
def test_rebuild_leaderboard_command_restores_boards_from_dynamodb():
    from io import StringIO

    from django.core.management import call_command

    from scoring import store

    store.total_put_if_version(total=total("a", 70), expected_version=0)
    store.total_put_if_version(total=total("b", 80), expected_version=0)
    ranking.client().flushdb()
    out = StringIO()
    call_command("rebuild_leaderboard", stdout=out)
    assert "from 2 player total(s)" in out.getvalue()
    assert [e.player_id for e in ranking.top("all", 10)[0]] == ["b", "a"]


@pytest.mark.usefixtures("table")
def test_rebuild_leaderboard_tells_every_board_to_read_a_new_snapshot():
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.core.management import call_command

    from scoring import broadcast

    layer = get_channel_layer()

    async def listen(window):
        channel = await layer.new_channel()
        await layer.group_add(broadcast.leaderboard_group(window), channel)
        return channel

    channels = {w: async_to_sync(listen)(w) for w in ("all", "week", "day")}
    call_command("rebuild_leaderboard", "--no-progress", stdout=open(os.devnull, "w"))
    for channel in channels.values():
        message = async_to_sync(asyncio.wait_for)(layer.receive(channel), timeout=5)
        assert message == {"type": "leaderboard.rebuilt"}


@pytest.mark.django_db
def test_a_batch_applied_while_the_boards_are_rebuilt_updates_them_but_tells_no_ranks():
    """Mid-rebuild a board is cleared and loaded part-way: a rank read from
    it is wrong ("you entered the top 10"), so nothing is told until the
    rebuild announces its boards."""
    from scoring.domain import Decision, Status, Submission
    from scoring.live import LiveUpdater
    from scoring.processing import BatchResult

    result = BatchResult()
    submission = Submission(id="s1", player_id="p1", player_name="P1", task="warm-up-sums", submitted_at=NOW)
    result.applied = [Decision(submission, Status.APPLIED, points=10)]
    result.totals = {"p1": total("p1", 10)}
    pushed = []
    with ranking.rebuild_lock() as held:
        assert held
        LiveUpdater(push=pushed.extend).after_batch(result)
    assert [message["type"] for _, message in pushed] == ["player.submission"]
    assert pushed[0][1]["submission"]["rank"] is None and result.ranks == {}
    assert [(e.player_id, e.total) for e in ranking.top("all", 10)[0]] == [("p1", 10)]  # the board took it
    pushed.clear()
    result.totals = {"p1": total("p1", 20, version=2)}
    LiveUpdater(push=pushed.extend).after_batch(result)  # the next batch, with no rebuild: a delta, a rank
    assert "leaderboard.delta" in [message["type"] for _, message in pushed]
    assert pushed[-1][1]["submission"]["rank"] == 1


def test_rebuild_leaderboard_without_redis_is_a_clear_error(settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.REDIS_URL = None
    with pytest.raises(CommandError, match="Redis is unavailable"):
        call_command("rebuild_leaderboard")


def test_boards_update_with_redis_gone_is_ranking_unavailable_not_a_redis_error(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(ranking.RankingUnavailable):
        ranking.boards_update([total("a", 10)], now=NOW)


# --- rank changes ------------------------------------------------------------


def rank_changes(totals, window="all"):
    [change] = [c for c in ranking.boards_update(totals, now=NOW) if c.window == window]
    return {rc.player_id: rc.as_message() for rc in change.rank_changes}


def who(*players):
    return [{"player_id": p, "player": p.upper()} for p in players]


def test_a_mover_and_the_player_it_passed_are_told_and_no_one_else():
    ranking.boards_update([total("a", 50), total("b", 40), total("c", 30)], now=NOW)
    assert rank_changes([total("c", 45, version=2)]) == {
        "c": {"type": "rank.change", "window": "all", "rank": 2, "previous_rank": 3, "passed": who("b"),
              "passed_by": [], "entered_top": None, "left_top": None},
        "b": {"type": "rank.change", "window": "all", "rank": 3, "previous_rank": 2, "passed": [],
              "passed_by": who("c"), "entered_top": None, "left_top": None},
    }


def test_crossing_the_top_boundary_says_entered_and_left(settings):
    settings.LEADERBOARD_SIZE = 2
    ranking.boards_update([total("a", 50), total("b", 40), total("c", 30)], now=NOW)
    changes = rank_changes([total("c", 45, version=2)])
    assert (changes["c"]["entered_top"], changes["c"]["left_top"]) == (2, None)
    assert (changes["b"]["entered_top"], changes["b"]["left_top"]) == (None, 2)


def test_movers_in_one_batch_passing_each_other_and_others():
    ranking.boards_update([total("a", 50), total("b", 40), total("c", 30), total("d", 20)], now=NOW)
    changes = rank_changes([total("c", 55, version=2), total("d", 45, version=2)])
    # c 55, a 50, d 45, b 40
    assert {p: (m["previous_rank"], m["rank"], m["passed"], m["passed_by"]) for p, m in changes.items()} == {
        "c": (3, 1, who("a", "b"), []),
        "a": (1, 2, [], who("c")),
        "d": (4, 3, who("b"), []),
        "b": (2, 4, [], who("c", "d")),
    }


def test_a_total_that_falls_is_passed_by_those_it_fell_behind():
    ranking.boards_update([total("a", 50), total("b", 40), total("c", 30)], now=NOW)
    changes = rank_changes([total("a", 35, version=2)])
    assert {p: (m["previous_rank"], m["rank"], m["passed"], m["passed_by"]) for p, m in changes.items()} == {
        "a": (1, 2, [], who("b")),
        "b": (2, 1, who("a"), []),
    }


def test_a_newcomer_passes_everyone_below_it_and_enters_the_top():
    ranking.boards_update([total("a", 50), total("b", 40)], now=NOW)
    changes = rank_changes([total("x", 45)])
    assert changes["x"] == {"type": "rank.change", "window": "all", "rank": 2, "previous_rank": None,
                            "passed": who("b"), "passed_by": [], "entered_top": 10, "left_top": None}
    assert (changes["b"]["previous_rank"], changes["b"]["rank"], changes["b"]["passed_by"]) == (2, 3, who("x"))
    assert set(changes) == {"x", "b"}


def test_gaining_points_without_changing_rank_says_nothing():
    ranking.boards_update([total("a", 50), total("b", 40)], now=NOW)
    assert rank_changes([total("b", 45, version=2)]) == {}


def test_a_long_jump_notifies_the_nearest_players_it_passed_up_to_the_limit(settings):
    settings.RANK_CHANGE_NOTIFY_LIMIT = 2
    ranking.boards_update([total(f"p{i}", 100 - i) for i in range(6)] + [total("z", 1)], now=NOW)
    changes = rank_changes([total("z", 1000, version=2)])
    assert changes["z"]["passed"] == who("p0", "p1")
    assert set(changes) == {"z", "p0", "p1"}
    assert (changes["p1"]["previous_rank"], changes["p1"]["rank"]) == (2, 3)


@pytest.mark.parametrize("seed", range(20))
def test_rank_changes_match_a_brute_force_count_on_random_batches(seed, settings):
    import random

    rng = random.Random(seed)
    settings.LEADERBOARD_SIZE = 5
    settings.RANK_CHANGE_NOTIFY_LIMIT = 1000
    before = {f"p{i}": rng.randint(1, 60) for i in range(25)}
    ranking.boards_update([total(p, v, reached=1 + int(p[1:])) for p, v in before.items()], now=NOW)
    after = dict(before)
    movers = rng.sample(sorted(before), 6) + [f"new{i}" for i in range(rng.randint(0, 3))]
    for p in movers:
        after[p] = max(1, after.get(p, 0) + rng.randint(-30, 30))
    batch = [total(p, after[p], version=2, reached=1 + int(p[1:]) if p.startswith("p") else 100 + int(p[3:]))
             for p in movers]
    reached = {t.player_id: t.reached_at_ms for t in batch} | {p: 1 + int(p[1:]) for p in before}

    def order(board):  # best first: higher total, then who reached it first
        return sorted(board, key=lambda p: (-board[p], reached[p]))

    old, new = order(before), order(after)
    old_rank = {p: i + 1 for i, p in enumerate(old)}
    new_rank = {p: i + 1 for i, p in enumerate(new)}
    expected = {}
    for p in new:
        passed = [q for q in new if q in old_rank and p in old_rank and old_rank[q] < old_rank[p]
                  and new_rank[q] > new_rank[p]] + [q for q in new if p not in old_rank and q in old_rank
                                                   and new_rank[q] > new_rank[p]]
        passed_by = [q for q in new if new_rank[q] < new_rank[p] and (
            (q in old_rank and p in old_rank and old_rank[q] > old_rank[p]) or (q not in old_rank and p in old_rank))]
        if old_rank.get(p) != new_rank[p]:
            was_in = p in old_rank and old_rank[p] <= 5
            expected[p] = (old_rank.get(p), new_rank[p], who(*passed), who(*passed_by),
                           5 if new_rank[p] <= 5 and not was_in else None, 5 if was_in and new_rank[p] > 5 else None)
    got = {p: (m["previous_rank"], m["rank"], m["passed"], m["passed_by"], m["entered_top"], m["left_top"])
           for p, m in rank_changes(batch).items()}
    assert got == expected


def test_top_is_served_again_from_the_cache_until_the_seq_moves():
    ranking.boards_update([total("a", 50)], now=datetime.now(UTC))
    first, seq = ranking.top("all", 10)
    # Behind the cache's back: a write that does not bump the seq is not seen...
    ranking.client().hset("lb:names", "a", "RENAMED")
    assert ranking.top("all", 10) == (first, seq)
    # ...and every board update bumps it.
    ranking.boards_update([total("b", 60)], now=datetime.now(UTC))
    entries, seq2 = ranking.top("all", 10)
    assert seq2 > seq and [(e.player_id, e.player_name) for e in entries] == [("b", "B"), ("a", "RENAMED")]


def test_a_board_lost_and_written_again_is_not_served_from_the_cache():
    ranking.boards_update([total("a", 50)], now=datetime.now(UTC))
    ranking.top("all", 10)
    ranking.client().flushdb()  # a Redis restart without persistence
    ranking.boards_update([total("z", 5)], now=datetime.now(UTC))  # the same seq, 1, as before
    assert [e.player_id for e in ranking.top("all", 10)[0]] == ["z"]


def test_rebuild_loads_in_chunks_and_reports_progress(monkeypatch):
    monkeypatch.setattr(ranking, "REBUILD_CHUNK", 3)
    seen = []
    count = ranking.boards_rebuild((total(f"p{i}", i + 1, today=i + 1) for i in range(7)), now=NOW,
                                   progress=seen.append)
    assert count == 7 and seen == [3, 6, 7]
    r = ranking.client()
    assert [e.player_id for e in ranking._top(r, "lb:all", 3)] == ["p6", "p5", "p4"]
    assert [e.player_id for e in ranking._top(r, "lb:" + TODAY, 2)] == ["p6", "p5"]


def test_rebuild_never_undoes_a_newer_update_made_meanwhile():
    def totals():
        # The boards are cleared; the consumer applies a newer total of "a"
        # before the rebuild's scan, which read an older one, loads it.
        ranking.boards_update([total("a", 90, version=7)], now=NOW)
        yield total("a", 10, version=6)
        yield total("b", 5)

    assert ranking.boards_rebuild(totals(), now=NOW) == 2
    assert [(e.player_id, e.total) for e in ranking._top(ranking.client(), "lb:all", 10)] == [("a", 90), ("b", 5)]



def test_rebuild_chunks_over_lua_unpack_limits_and_repeated_players(monkeypatch):
    # 4,500 players in one chunk: every variadic call in the load script
    # goes past one slice. "p0" comes three times; the highest version wins,
    # and it is on the board once.
    monkeypatch.setattr(ranking, "REBUILD_CHUNK", 5000)
    totals = [total(f"p{i}", i + 1, version=2) for i in range(4500)]
    totals += [total("p0", 10_000, version=3), total("p0", 20_000, version=1)]
    assert ranking.boards_rebuild(totals, now=NOW) == len(totals)
    r = ranking.client()
    assert r.zcard("lb:all") == 4500 and r.hlen("lb:all:versions") == 4500
    assert [(e.player_id, e.total) for e in ranking._top(r, "lb:all", 3)] == [("p0", 10_000), ("p4499", 4500),
                                                                              ("p4498", 4499)]

def test_activity_keeps_the_latest_completions_and_counts_them_per_minute():
    minute = int(NOW.timestamp()) // 60 * 60_000
    for i in range(3):
        ranking.pipeline_record(lag_ms=5, as_of_ms=minute + i, applied=2,
                                activity=[{"player": f"P{i}b"}, {"player": f"P{i}a"}])
    ranking.pipeline_record(lag_ms=7, as_of_ms=minute - 60_000, applied=1, activity=[{"player": "old"}])
    assert [a["player"] for a in ranking.activity_recent(limit=4)] == ["old", "P2b", "P2a", "P1b"]
    per_minute = ranking.activity_per_minute(3, now=NOW)
    assert [p["count"] for p in per_minute] == [0, 1, 6]
    assert per_minute[-1]["minute"] == "2026-11-26T12:00:00.000Z"
    assert ranking.pipeline_state() == {"pipeline": {"lag_ms": 7, "as_of": ranking.iso(minute - 60_000)},
                                        "heartbeat_at": ranking.iso(minute - 60_000)}


def test_activity_keeps_only_the_latest_few():
    ranking.pipeline_record(lag_ms=0, as_of_ms=1, applied=0,
                            activity=[{"n": i} for i in range(ranking.ACTIVITY_KEEP + 5)])
    assert [a["n"] for a in ranking.activity_recent(limit=1000)] == list(range(ranking.ACTIVITY_KEEP))
