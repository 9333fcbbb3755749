"""The spectator dashboard's reads, through a real moto server and Redis:
GET /api/leaderboard/history/ (the top players' totals over time, from
their ledgers) and GET /api/activity/ (recent completions, per minute)."""

from datetime import UTC, datetime, timedelta

import pytest

from scoring import rules, spectator, store
from scoring.domain import Submission, adjustment_id, utcnow
from scoring.live import LiveUpdater
from scoring.models import RulesChange
from tests.scoring.test_rules import process

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

HISTORY = "/api/leaderboard/history/"
ACTIVITY = "/api/activity/"
EASY, HARD = "warm-up-sums", "big-products"  # 10 and 50 points in the seeded catalog


def play(player: str, n: int, task: str, at: datetime) -> Submission:
    return Submission(id=f"{player}-{n}", player_id=player, player_name=player.title(), task=task, submitted_at=at,
                      verified_by="trusted:test")


def live(subs: list[Submission]):
    """Apply these as the consumer does, boards and activity included."""
    return process(subs, live=LiveUpdater(push=lambda messages: None))


def ok(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def now():
    # Plays seconds before it are in this day and week, unless the test runs
    # within those seconds of midnight (UTC).
    return utcnow().replace(microsecond=0)


def test_history_gives_each_top_player_a_line_that_steps_to_their_total(api_client, redis_url, now):
    t = now - timedelta(seconds=10)
    live([play("ann", 0, EASY, t), play("bob", 0, HARD, t + timedelta(seconds=1))])
    live([play("ann", 1, HARD, t + timedelta(seconds=2)), play("ann", 2, EASY, t + timedelta(seconds=3))])

    body = ok(api_client, HISTORY)  # anyone may watch: no credentials

    assert (body["window"], body["since"], body["entries_per_player"]) == ("all", None, spectator.HISTORY_ENTRIES)
    ann, bob = body["series"]
    assert (ann["player"], ann["rank"], ann["total"], ann["base"], ann["truncated"]) == ("Ann", 1, 70, 0, False)
    assert [p["total"] for p in ann["points"]] == [10, 60, 70]
    assert [datetime.fromisoformat(p["at"]) for p in ann["points"]] == [t + timedelta(seconds=s) for s in (0, 2, 3)]
    assert (bob["player"], bob["rank"], [p["total"] for p in bob["points"]]) == ("Bob", 2, [50])


def test_history_is_read_once_a_moment_for_every_viewer(api_client, redis_url, now, monkeypatch):
    live([play("ann", 0, EASY, now - timedelta(seconds=5))])
    reads = []
    real = spectator._ledger_in_period
    monkeypatch.setattr(spectator, "_ledger_in_period", lambda player, *a: reads.append(player) or real(player, *a))
    first = ok(api_client, HISTORY)
    assert ok(api_client, HISTORY) == first and reads == ["ann"]  # the second viewer got the first's read
    live([play("bob", 0, HARD, now - timedelta(seconds=4))])
    assert [s["player"] for s in ok(api_client, HISTORY, limit=1)["series"]] == ["Bob"]  # another size, read anew
    assert ok(api_client, HISTORY, window="week")["series"][0]["player"] == "Bob"  # another window too


def test_history_reads_only_the_top_players_and_the_newest_entries_of_each(api_client, redis_url, now):
    t = now - timedelta(seconds=120)
    live([play(f"p{i}", n, EASY, t + timedelta(seconds=10 * i + n)) for i in range(12) for n in range(i % 3 + 1)])

    series = ok(api_client, HISTORY)["series"]
    assert len(series) == spectator.HISTORY_PLAYERS
    assert [s["rank"] for s in series] == list(range(1, 11))
    assert ok(api_client, HISTORY, limit=3)["series"] == series[:3]

    # A capped read starts its line from what the older entries summed to.
    _, capped = spectator.leaderboard_history(window="all", players=1, entries=2)
    line = capped[0]
    assert (line.total, line.truncated, line.base, [p.total for p in line.points]) == (30, True, 10, [20, 30])
    _, whole = spectator.leaderboard_history(window="all", players=1, entries=3)
    assert (whole[0].truncated, whole[0].base, [p.total for p in whole[0].points]) == (False, 0, [10, 20, 30])


@pytest.mark.parametrize("window", ["week", "day"])
def test_history_of_a_period_counts_what_was_played_in_it(api_client, redis_url, now, window):
    start = spectator.window_start(window=window, now=now)
    live([play("ann", 0, HARD, start - timedelta(minutes=1)), play("ann", 1, EASY, now - timedelta(seconds=5)),
          play("bob", 0, EASY, start - timedelta(minutes=2))])

    body = ok(api_client, HISTORY, window=window)

    assert datetime.fromisoformat(body["since"]) == start
    assert [(s["player"], s["total"], s["base"], [p["total"] for p in s["points"]]) for s in body["series"]] == [
        ("Ann", 10, 0, [10])]
    assert [p["total"] for p in ok(api_client, HISTORY)["series"][0]["points"]] == [50, 60]


def test_history_of_all_time_steps_at_an_adjustment_and_still_ends_at_the_total(api_client, redis_url, now):
    t = now - timedelta(seconds=5)
    live([play("ann", 0, HARD, t), play("ann", 1, EASY, t + timedelta(seconds=1))])
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="test", actor="t")
    live(list(store.scores_get_many(submission_ids=[adjustment_id(rules_change=change.pk, player_id="ann")]).values()))

    ann = ok(api_client, HISTORY)["series"][0]
    assert (ann["total"], [p["total"] for p in ann["points"]]) == (70, [50, 60, 70])
    # The week counts submissions only: the change re-scored the week's Hard play
    # in the board's window, which the line's end (the board) shows.
    week = ok(api_client, HISTORY, window="week")["series"][0]
    assert week["total"] == 70
    assert [p["total"] for p in week["points"]][-1] == 70


def test_history_without_redis_reads_all_time_from_dynamodb_and_refuses_a_period(api_client, settings, now):
    settings.REDIS_URL = ""
    live([play("ann", 0, EASY, now - timedelta(minutes=1))])

    assert [p["total"] for p in ok(api_client, HISTORY)["series"][0]["points"]] == [10]
    response = api_client.get(HISTORY, {"window": "week"})
    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]


@pytest.mark.parametrize("query", ["window=year", "limit=0", "limit=11", "limit=ten", "bogus=1", "limit=",
                                   "window="])
def test_history_refuses_a_bad_query_naming_the_parameter(api_client, redis_url, query):
    response = api_client.get(f"{HISTORY}?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_activity_lists_the_latest_completions_and_counts_them_per_minute(api_client, redis_url, now):
    live([play("ann", 0, EASY, now - timedelta(seconds=3)), play("bob", 0, HARD, now - timedelta(seconds=2))])
    live([play("ann", 1, EASY, now - timedelta(seconds=1))])

    body = ok(api_client, ACTIVITY, minutes=5, limit=2)

    assert [(a["player"], a["task"], a["task_title"], a["points"]) for a in body["recent"]] == [
        ("Ann", EASY, "Warm-up sums", 10), ("Bob", HARD, "Big products", 50)]
    assert datetime.fromisoformat(body["recent"][0]["at"]) == now - timedelta(seconds=1)
    minutes = [datetime.fromisoformat(m["minute"]) for m in body["per_minute"]]
    assert len(minutes) == 5 and minutes == sorted(minutes)
    assert minutes[-1] == utcnow().replace(second=0, microsecond=0)
    assert sum(m["count"] for m in body["per_minute"]) == 3
    assert len(ok(api_client, ACTIVITY)["per_minute"]) == 30


def test_activity_skips_items_it_cannot_show(api_client, redis_url):
    from scoring import ranking

    ranking.pipeline_record(lag_ms=1, as_of_ms=int(utcnow().timestamp() * 1000), applied=1,
                            activity=[{"player": "no id"}, {"player_id": "1", "player": "Ann", "task": EASY,
                                                            "points": 10, "at": "2026-01-01T00:00:00.000Z"}])
    recent = ok(api_client, ACTIVITY)["recent"]
    assert [(a["player"], a["task_title"]) for a in recent] == [("Ann", EASY)]


def test_activity_without_redis_is_a_503_saying_so(api_client, settings):
    settings.REDIS_URL = ""
    response = api_client.get(ACTIVITY)
    assert response.status_code == 503
    assert response.json() == {"detail": "The live activity is unavailable (Redis). Try again shortly."}


@pytest.mark.parametrize("query", ["limit=0", "limit=51", "minutes=0", "minutes=181", "minutes=x", "bogus=1",
                                   "minutes="])
def test_activity_refuses_a_bad_query_naming_the_parameter(api_client, redis_url, query):
    response = api_client.get(f"{ACTIVITY}?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_window_start_is_midnight_and_monday_utc():
    moment = datetime(2026, 3, 5, 13, 7, tzinfo=UTC)  # a Thursday
    assert spectator.window_start(window="day", now=moment) == datetime(2026, 3, 5, tzinfo=UTC)
    assert spectator.window_start(window="week", now=moment) == datetime(2026, 3, 2, tzinfo=UTC)
    assert spectator.window_start(window="all", now=moment) is None
