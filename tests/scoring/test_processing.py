"""The processing core against a real moto server: exactly-once totals."""

import threading
from datetime import UTC, datetime

import pytest

from scoring import processing, store
from scoring.domain import PlayerTotal, Status, Submission
from tests.records import stream_record

pytestmark = pytest.mark.usefixtures("table")

POINTS = {"easy": 10, "hard": 50}


def points_for(task):
    return POINTS.get(task)


def put(sub_id, player="p1", task="easy", name=None):
    submission = Submission(id=sub_id, player_id=player, player_name=name or player.upper(), task=task,
                            submitted_at=datetime(2026, 11, 26, 12, 0, int(sub_id[-1]) if sub_id[-1].isdigit() else 0,
                                                  tzinfo=UTC))
    store.score_put(submission=submission)
    return submission


def record_for(submission, seq="1"):
    return stream_record(submission, seq=seq)


def total_of(player):
    return store.totals_get_many(player_ids=[player]).get(player)


def test_batch_applies_points_and_folds_one_total_per_player():
    records = [record_for(put(f"s{i}", player="p1" if i < 3 else "p2", task="easy" if i % 2 else "hard"), str(i))
               for i in range(5)]
    result = processing.records_process(records, points_for=points_for)
    assert total_of("p1").total == 50 + 10 + 50
    assert total_of("p2").total == 10 + 50
    assert len(result.applied) == 5
    assert store.score_get(submission_id="s0").status is Status.APPLIED
    assert store.score_get(submission_id="s0").points == 50
    # Outcomes are written after the total: until the player's next batch,
    # the TOTAL remembers which submissions it includes.
    assert total_of("p1").pending == {"s0": 50, "s1": 10, "s2": 50}


def test_replayed_batch_does_not_double_count():
    records = [record_for(put(f"s{i}"), str(i)) for i in range(3)]
    processing.records_process(records, points_for=points_for)
    again = processing.records_process(records, points_for=points_for)
    assert total_of("p1").total == 30
    assert again.skipped == 3


def test_crash_between_total_and_outcomes_is_recovered_without_double_count(monkeypatch):
    records = [record_for(put(f"s{i}"), str(i)) for i in range(3)]

    def crash(**kwargs):
        raise RuntimeError("killed before writing outcomes")

    monkeypatch.setattr(store, "scores_put_outcomes", crash)
    with pytest.raises(RuntimeError):
        processing.records_process(records, points_for=points_for)
    assert total_of("p1").total == 30
    assert store.score_get(submission_id="s0").status is Status.PENDING
    monkeypatch.undo()
    # The replay happens after an admin changed the points: the outcome must
    # still show the points the total was given.
    result = processing.records_process(records, points_for=lambda task: 999)
    assert total_of("p1").total == 30
    assert {d.points for d in result.applied} == {10}
    assert store.score_get(submission_id="s2").points == 10


def test_pending_map_forgets_settled_submissions_on_the_next_batch():
    processing.records_process([record_for(put("s1"), "1")], points_for=points_for)
    processing.records_process([record_for(put("s2"), "2")], points_for=points_for)
    assert set(total_of("p1").pending) == {"s2"}
    assert total_of("p1").total == 20


def test_unknown_task_is_rejected_with_an_error_and_no_points():
    result = processing.records_process([record_for(put("s1", task="gone"), "1")], points_for=points_for)
    assert result.totals == {}  # no board changed: no leaderboard deltas
    stored = store.score_get(submission_id="s1")
    assert stored.status is Status.REJECTED
    assert "gone" in stored.error
    # The rejection is committed in the TOTAL like any decision, but a player
    # with nothing applied has no points and no rank.
    total = total_of("p1")
    assert (total.total, total.rejected, total.on_leaderboard) == (0, {"s1": stored.error}, False)
    assert store.leaderboard_top(limit=10) == []
    processing.records_process([record_for(put("s2"), "2")], points_for=points_for)
    total = total_of("p1")
    assert (total.total, total.rejected, total.on_leaderboard) == (10, {}, True)  # s1 settled: forgotten
    assert [e.player_id for e in store.leaderboard_top(limit=10)] == ["p1"]


def test_malformed_record_is_poison():
    with pytest.raises(processing.PoisonRecord):
        processing.records_process([{"eventName": "INSERT", "dynamodb": {"NewImage": {"PK": {"S": "SCORE#x"}}}}],
                                   points_for=points_for)


def test_events_are_published_after_the_writes():
    seen = []
    processing.records_process([record_for(put("s1"), "1"), record_for(put("s2", task="gone"), "2")],
                               points_for=points_for, publish=seen.extend)
    assert [(e.type, e.submission_id, e.points, e.total) for e in seen] == [
        ("ScoreApplied", "s1", 10, 10), ("ScoreRejected", "s2", None, None)]


def test_leaderboard_reads_totals_written_by_processing():
    records = [record_for(put("a1", player="a"), "1"), record_for(put("b1", player="b", task="hard"), "2")]
    processing.records_process(records, points_for=points_for)
    top = store.leaderboard_top(limit=10)
    assert [(e.player_id, e.total) for e in top] == [("b", 50), ("a", 10)]


def _duplicate(records):
    """Another worker processes these records in full, then one more batch
    of the same player, which drops them from the TOTAL's pending map."""
    processing.records_process(records, points_for=points_for)
    processing.records_process([record_for(put("later9"), "9")], points_for=points_for)


def test_a_duplicate_worker_that_settled_first_is_not_counted_again_after_a_lost_race():
    records = [record_for(put("s1"), "1")]
    fired = []

    def points_meanwhile(task):  # this worker has read TOTAL and SCOREs; the other one runs now
        if not fired:
            fired.append(True)
            _duplicate(records)
        return points_for(task)

    result = processing.records_process(records, points_for=points_meanwhile)
    assert total_of("p1").total == 20  # s1 and later9, 10 each, once
    assert result.applied == [] and result.rejected == []
    assert store.score_get(submission_id="s1").status is Status.APPLIED


def test_a_duplicate_worker_between_reading_totals_and_scores_is_not_counted_again(monkeypatch):
    records = [record_for(put("s1"), "1")]
    real = store.scores_status_many
    fired = []

    def duplicate_then_scores(**kwargs):
        # This worker has read the TOTALs; the other one runs in full before
        # it reads the SCOREs, so it finds s1 settled and leaves it alone.
        if not fired:
            fired.append(True)
            _duplicate(records)
        return real(**kwargs)

    monkeypatch.setattr(store, "scores_status_many", duplicate_then_scores)
    processing.records_process(records, points_for=points_for)
    monkeypatch.undo()
    assert total_of("p1").total == 20
    assert store.score_get(submission_id="s1").status is Status.APPLIED


@pytest.fixture(params=[False, True], ids=["new player", "player with a total"])
def earlier_points(request):
    """0, or 50 after a first batch: the races below start from no TOTAL or from one."""
    if request.param:
        processing.records_process([record_for(put("s0", task="hard"), "0")], points_for=points_for)
        return 50
    return 0


def test_a_rejection_racing_an_apply_of_the_same_submission_follows_the_committed_apply(monkeypatch,
                                                                                        earlier_points):
    # This worker's catalog says the task is gone; the other worker's still
    # had it and commits first. Both must settle it the same way.
    records = [record_for(put("s1"), "1")]
    real = store.scores_status_many
    real_outcomes = store.scores_put_outcomes
    fired = []

    def scores_then_other_worker(**kwargs):
        found = real(**kwargs)  # this worker sees s1 pending
        if not fired:
            fired.append(True)
            # The other worker commits s1 as applied and has not written the
            # SCORE outcome yet.
            monkeypatch.setattr(store, "scores_put_outcomes", lambda **kw: None)
            processing.records_process(records, points_for=points_for)
            monkeypatch.setattr(store, "scores_put_outcomes", real_outcomes)
        return found

    monkeypatch.setattr(store, "scores_status_many", scores_then_other_worker)
    result = processing.records_process(records, points_for=lambda task: None)
    monkeypatch.undo()
    assert [(d.status, d.points) for d in result.applied] == [(Status.APPLIED, 10)] and result.rejected == []
    assert (store.score_get(submission_id="s1").status, total_of("p1").total) == (Status.APPLIED,
                                                                                 earlier_points + 10)


def test_an_apply_racing_a_committed_rejection_follows_it(monkeypatch, earlier_points):
    records = [record_for(put("s1"), "1")]
    real = store.totals_get_many
    fired = []

    def totals_then_other_worker(**kwargs):
        found = real(**kwargs)
        if not fired:
            fired.append(True)
            # The other worker, whose catalog no longer has the task, commits a
            # rejection; it has not written the SCORE outcome yet.
            monkeypatch.setattr(store, "scores_put_outcomes", lambda **kw: None)
            processing.records_process(records, points_for=lambda task: None)
            monkeypatch.setattr(store, "scores_put_outcomes", real_outcomes)
        return found

    real_outcomes = store.scores_put_outcomes
    monkeypatch.setattr(store, "totals_get_many", totals_then_other_worker)
    result = processing.records_process(records, points_for=points_for)
    monkeypatch.undo()
    assert result.applied == [] and [d.status for d in result.rejected] == [Status.REJECTED]
    stored = store.score_get(submission_id="s1")
    assert stored.status is Status.REJECTED and "no longer exists" in stored.error
    assert total_of("p1").total == earlier_points
    assert "p1" not in result.totals


def test_a_batch_of_rejections_for_a_ranked_player_changes_no_board():
    processing.records_process([record_for(put("s0"), "0")], points_for=points_for)
    result = processing.records_process([record_for(put("s1", task="gone"), "1")], points_for=points_for)
    assert result.totals == {} and [d.submission.id for d in result.rejected] == ["s1"]
    assert total_of("p1").on_leaderboard and total_of("p1").total == 10


# --- a worker's cache of the TOTALs it wrote (processing.TotalsCache) -------


def count_total_reads(monkeypatch) -> list[list[str]]:
    reads, real = [], store.totals_get_many

    def counted(**kwargs):
        reads.append(kwargs["player_ids"])
        return real(**kwargs)

    monkeypatch.setattr(store, "totals_get_many", counted)
    monkeypatch.setattr(store.totals, "totals_get_many", counted)  # total_change's re-read after a lost race
    return reads


def test_a_batch_starts_from_the_totals_its_worker_wrote_without_reading_them(monkeypatch):
    cache = processing.TotalsCache(100)
    processing.records_process([record_for(put("s1", player="p1"), "1"), record_for(put("s2", player="p2"), "2")],
                               points_for=points_for, known_totals=cache)
    reads = count_total_reads(monkeypatch)
    processing.records_process([record_for(put("s3", player="p1", task="hard"), "3"),
                                record_for(put("s4", player="p3"), "4")], points_for=points_for, known_totals=cache)
    assert reads == [["p3"]]  # p1's came from the cache; p3 had none yet
    assert total_of("p1").total == 60 and total_of("p1").pending == {"s3": 50}
    # The entry is what the table holds, field for field.
    assert cache.get_many(["p1", "p3"]) == {"p1": total_of("p1"), "p3": total_of("p3")}


def test_a_total_written_behind_the_cache_fails_its_version_check_and_is_counted_once(monkeypatch):
    cache = processing.TotalsCache(100)
    processing.records_process([record_for(put("s1"), "1")], points_for=points_for, known_totals=cache)
    # Another worker (no cache) applies s2 to the same player.
    processing.records_process([record_for(put("s2"), "2")], points_for=points_for)
    reads = count_total_reads(monkeypatch)
    # This worker's entry is stale: its write loses the race, re-reads, folds again.
    result = processing.records_process([record_for(put("s3", task="hard"), "3"),
                                         record_for(store.score_get(submission_id="s2"), "2")],
                                        points_for=points_for, known_totals=cache)
    assert reads == [["p1"]]
    assert total_of("p1").total == 10 + 10 + 50
    assert [d.submission.id for d in result.applied] == ["s3"] and result.skipped == 1
    assert cache.get_many(["p1"])["p1"] == total_of("p1")


def test_a_failed_batch_empties_the_cache_and_its_replay_counts_once(monkeypatch):
    cache = processing.TotalsCache(100)
    processing.records_process([record_for(put("s1"), "1")], points_for=points_for, known_totals=cache)
    records = [record_for(put("s2"), "2")]
    monkeypatch.setattr(store, "scores_put_outcomes", lambda **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        processing.records_process(records, points_for=points_for, known_totals=cache)
    monkeypatch.undo()
    assert len(cache) == 0
    processing.records_process(records, points_for=points_for, known_totals=cache)
    assert total_of("p1").total == 20 and store.score_get(submission_id="s2").status is Status.APPLIED


def test_the_cache_keeps_the_most_recently_used_players():
    cache = processing.TotalsCache(2)
    for player in ("a", "b"):
        cache.put(PlayerTotal(player_id=player, player_name=player))
    cache.get_many(["a"])
    cache.put(PlayerTotal(player_id="c", player_name="c"))
    assert set(cache.get_many(["a", "b", "c"])) == {"a", "c"}
    assert (cache.hits, cache.misses) == (3, 1)


def test_a_batch_writes_its_players_totals_side_by_side_and_a_failed_one_is_replayed_exactly(monkeypatch):
    records = [record_for(put(f"s{i}", player=f"p{i}"), str(i)) for i in range(6)]
    real, threads = store.totals.total_put_if_version, set()

    def failing_for_p3(*, total, expected_version):
        threads.add(threading.current_thread().name)
        if total.player_id == "p3":
            raise store.StoreUnavailable("throttled")
        return real(total=total, expected_version=expected_version)

    monkeypatch.setattr(store.totals, "total_put_if_version", failing_for_p3)
    with pytest.raises(store.StoreUnavailable):
        processing.records_process(records, points_for=points_for)
    monkeypatch.undo()
    assert all(name.startswith("total-writer") for name in threads)
    assert store.score_get(submission_id="s0").status is Status.PENDING  # no outcome before every TOTAL is in
    result = processing.records_process(records, points_for=points_for)
    assert [d.submission.id for d in result.applied] == [f"s{i}" for i in range(6)]  # the batch's order
    assert [total_of(f"p{i}").total for i in range(6)] == [10] * 6


def gate_writes_on_keep_alive(monkeypatch, keep_alive_calls: list):
    """TOTAL writes that wait until keep_alive has been called while they
    were in flight (at most 10 s), and the keep_alive that records it."""
    real, in_flight, seen = store.totals.total_put_if_version, [], threading.Event()

    def gated(*, total, expected_version):
        in_flight.append(total.player_id)
        seen.wait(timeout=10)
        return real(total=total, expected_version=expected_version)

    def keep_alive():
        keep_alive_calls.append(len(in_flight))
        if in_flight:
            seen.set()

    monkeypatch.setattr(store.totals, "total_put_if_version", gated)
    monkeypatch.setattr(processing, "KEEP_ALIVE_SECONDS", 0.01)
    return keep_alive


def test_a_batch_calls_keep_alive_between_its_steps_and_while_its_totals_are_written(monkeypatch):
    records = [record_for(put(f"s{i}", player=f"p{i}"), str(i)) for i in range(6)]
    calls = []
    keep_alive = gate_writes_on_keep_alive(monkeypatch, calls)
    processing.records_process(records, points_for=points_for, keep_alive=keep_alive)
    assert calls[0] == 0  # after the reads, before any write
    assert any(0 < n for n in calls[1:-2])  # while writes were in flight
    assert calls[-2:] == [6, 6]  # after the boards' update, and before the outcomes
    assert [total_of(f"p{i}").total for i in range(6)] == [10] * 6


def test_a_batch_given_up_by_keep_alive_finishes_its_writes_and_its_replay_counts_once(monkeypatch):
    from scoring.stream.reader import BatchAbandoned

    records = [record_for(put(f"s{i}", player=f"p{i}"), str(i)) for i in range(6)]
    calls = []
    recording = gate_writes_on_keep_alive(monkeypatch, calls)

    def lease_lost_during_the_writes():
        recording()
        if calls[-1]:
            raise BatchAbandoned("lost the lease")

    with pytest.raises(BatchAbandoned):
        processing.records_process(records, points_for=points_for, keep_alive=lease_lost_during_the_writes)
    monkeypatch.undo()
    # Every TOTAL write had finished when the batch was given up; no outcome was written.
    assert [total_of(f"p{i}").total for i in range(6)] == [10] * 6
    assert {store.score_get(submission_id=f"s{i}").status for i in range(6)} == {Status.PENDING}
    result = processing.records_process(records, points_for=points_for)  # the shard's next owner
    assert len(result.applied) == 6
    assert [total_of(f"p{i}").total for i in range(6)] == [10] * 6
    assert {store.score_get(submission_id=f"s{i}").status for i in range(6)} == {Status.APPLIED}


def test_a_large_batch_writes_its_outcomes_in_steps_keeping_its_leases_between_them(monkeypatch):
    records = [record_for(put(f"s{i}", player=f"p{i}"), str(i)) for i in range(5)]
    log = []
    real = store.scores_put_outcomes

    def writing(*, submissions, reviewed=()):
        log.append(f"write {len(submissions)}")
        real(submissions=submissions, reviewed=reviewed)

    monkeypatch.setattr(processing, "OUTCOMES_PER_STEP", 2)
    monkeypatch.setattr(store, "scores_put_outcomes", writing)
    processing.records_process(records, points_for=points_for, keep_alive=lambda: log.append("alive"))
    assert log[-6:] == ["alive", "write 2", "alive", "write 2", "alive", "write 1"]
    assert {store.score_get(submission_id=f"s{i}").status for i in range(5)} == {Status.APPLIED}
