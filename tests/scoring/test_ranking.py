"""The Redis leaderboard read model, on a real redis-server process."""

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
