"""The pure rules of scoring: no DynamoDB, no Redis, no Django database."""

from datetime import UTC, datetime

import pytest

from scoring.backoff import backoff_seconds
from scoring.domain import (
    Decision,
    LeaderboardEntry,
    Outcome,
    PlayerTotal,
    Status,
    Submission,
    decide,
    decision_standing,
    fold_player,
    fold_rejection,
    rank_key,
    rank_member,
    rank_member_parse,
    total_expected,
)

PLAYED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def sub(sub_id: str) -> Submission:
    return Submission(id=sub_id, player_id="p1", player_name="P1", task="easy", submitted_at=PLAYED)


def applied(sub_id: str, points: int = 10) -> Decision:
    return decide(sub(sub_id), points)


def test_a_batch_folds_into_one_new_total_with_its_points_and_windows():
    change = fold_player(PlayerTotal(player_id="p1", player_name="P1", on_leaderboard=False),
                         fresh=[applied("a"), applied("b", 25), decide(sub("c"), None)], settled_ids=set())
    total = change.new_total
    assert (total.total, total.version, change.added) == (35, 1, 35)
    assert total.pending == {"a": 10, "b": 25} and set(total.rejected) == {"c"}
    assert total.windows == {"week:2026-W48": 35, "day:2026-11-26": 35} and total.on_leaderboard
    assert [d.submission.id for d in change.applied] == ["a", "b"]
    assert [d.submission.id for d in change.rejected] == ["c"]


def test_a_replay_adds_nothing_and_follows_the_decisions_that_stand():
    first = fold_player(PlayerTotal(player_id="p1", player_name="P1"), fresh=[applied("a"), decide(sub("c"), None)],
                        settled_ids=set()).new_total
    # The catalog changed meanwhile: the replay would decide differently, but what was committed stands.
    again = fold_player(first, fresh=[applied("a", 99), applied("c", 5)], settled_ids=set())
    assert (again.new_total.total, again.added) == (first.total, 0)
    assert [(d.submission.id, d.status, d.points) for d in again.applied] == [("a", Status.APPLIED, 10)]
    assert [(d.submission.id, d.status) for d in again.rejected] == [("c", Status.REJECTED)]


def test_settled_submissions_leave_both_maps():
    current = PlayerTotal(player_id="p1", player_name="P1", total=10, version=3, pending={"a": 10},
                          rejected={"c": "gone"})
    new = fold_player(current, fresh=[applied("d")], settled_ids={"a", "c"}).new_total
    assert new.pending == {"d": 10} and new.rejected == {} and new.total == 20


def test_which_decision_stands():
    total = PlayerTotal(player_id="p1", player_name="P1", pending={"a": 10}, rejected={"c": "gone"})
    assert decision_standing(total, "a") == Outcome(Status.APPLIED, points=10)
    assert decision_standing(total, "c") == Outcome(Status.REJECTED, error="gone")
    assert decision_standing(total, "x") is None and decision_standing(None, "a") is None


def test_dead_lettering_follows_a_standing_decision_or_records_a_rejection():
    total = PlayerTotal(player_id="p1", player_name="P1", total=10, version=4, pending={"a": 10})
    assert fold_rejection(total, player_id="p1", player_name="P1", submission_id="a", error="boom") == (
        None, Outcome(Status.APPLIED, points=10))
    new, outcome = fold_rejection(total, player_id="p1", player_name="P1", submission_id="b", error="boom")
    assert outcome == Outcome(Status.REJECTED, error="boom")
    assert (new.version, new.total, new.rejected, new.pending) == (5, 10, {"b": "boom"}, {"a": 10})
    first, _ = fold_rejection(None, player_id="p2", player_name="P2", submission_id="b", error="boom")
    assert (first.version, first.on_leaderboard) == (1, False)


def test_expected_total_counts_points_held_for_still_pending_submissions():
    total = PlayerTotal(player_id="p1", player_name="P1", pending={"a": 10, "b": 5})
    assert total_expected(applied_points=30, total=total, pending_ids={"a"}) == 40
    assert total_expected(applied_points=30, total=None, pending_ids={"a"}) == 30


def test_rank_keys_sort_higher_totals_first_and_earlier_on_a_tie():
    keys = [rank_key(total=t, reached_at_ms=ms) for t, ms in [(10, 5), (20, 9), (20, 3), (7, 1)]]
    assert sorted(keys, reverse=True) == [keys[2], keys[1], keys[0], keys[3]]


@pytest.mark.parametrize("player_id", ["42", "p|with|bars", "PLAYER#x"])
def test_a_board_member_names_its_total_and_player(player_id):
    member = rank_member(total=1234, reached_at_ms=1_795_000_000_000, player_id=player_id)
    assert rank_member_parse(member) == (1234, player_id)


def test_a_board_member_written_before_the_shared_rank_key_still_parses():
    assert rank_member_parse(f"{1234:015d}|{10**13 - 5:013d}|p|1") == (1234, "p|1")


def test_a_leaderboard_entry_has_the_apis_shape():
    assert LeaderboardEntry(1, "p1", "Ada", 50).as_dict() == {"rank": 1, "player_id": "p1", "player": "Ada",
                                                              "total": 50}


def test_backoff_grows_to_its_cap_and_jitter_stays_below_it():
    assert [backoff_seconds(a, base=0.2, cap=1.0, jitter=False) for a in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert all(0 <= backoff_seconds(6, base=0.2, cap=1.0) <= 1.0 for _ in range(100))
    # A loop that has retried for hours (a worker waiting out a long outage).
    assert backoff_seconds(5_000, base=0.2, cap=3.3, jitter=False) == 3.3
