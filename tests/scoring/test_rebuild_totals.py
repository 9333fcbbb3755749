"""rebuild_totals finds drift between totals and applied scores, and fixes it."""

from dataclasses import replace
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scoring import processing, store
from scoring.domain import PlayerTotal, Status, Submission
from tests.records import stream_record

pytestmark = pytest.mark.usefixtures("table")


def applied(sub_id, player, points):
    submission = Submission(id=sub_id, player_id=player, player_name=f"Player {player}", task="t",
                            submitted_at=datetime.now(UTC), status=Status.APPLIED, points=points,
                            processed_at=datetime.now(UTC))
    store.scores_put_outcomes(submissions=[submission])


def rebuild(*args, drifted: bool = False):
    """Its report; with ``drifted``, one that ends in drift left, which is
    a CommandError (exit status 1), its message appended."""
    out = StringIO()
    if not drifted:
        call_command("rebuild_totals", "--no-progress", *args, stdout=out)
        return out.getvalue()
    with pytest.raises(CommandError) as refused:
        call_command("rebuild_totals", "--no-progress", *args, stdout=out)
    return out.getvalue() + str(refused.value)


def test_no_drift_after_normal_processing():
    submission = Submission(id="s1", player_id="p1", player_name="P1", task="easy", submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    record = stream_record(submission)
    processing.records_process([record], points_for=lambda task: 10)
    assert "0 player(s) drifted" in rebuild()


def test_drift_is_reported_then_fixed():
    applied("a", "p1", 10)
    applied("b", "p1", 25)
    applied("c", "p2", 50)
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="p1", total=99, version=1),
                               expected_version=0)
    report = rebuild(drifted=True)
    assert "player p1: stored 99, expected 35 (-64)" in report
    assert "2 player(s) drifted (above); --fix corrects them." in report
    assert "player p2: stored 0, expected 50 (+50)" in report
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 99  # report only
    fixed = rebuild("--fix")
    assert "fixed 2" in fixed
    totals = store.totals_get_many(player_ids=["p1", "p2"])
    assert (totals["p1"].total, totals["p2"].total) == (35, 50)
    # p2 had no TOTAL: the new one has their name, and ranks by when they got there.
    stored_c = store.score_get(submission_id="c")
    assert (totals["p2"].player_name, totals["p2"].reached_at_ms) == (
        "Player p2", int(stored_c.submitted_at.timestamp() * 1000))
    assert "0 player(s) drifted" in rebuild()


def test_a_total_written_before_counts_gets_them_rebuilt_from_its_ledger():
    """A TOTAL from before rules changes (no per-task counts) would be
    missed by a retroactive change: reported, and --fix rebuilds them."""
    applied("a", "p1", 10)
    applied("b", "p1", 10)
    applied("c", "p1", 50)
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="p1", total=70, version=1),
                               expected_version=0)
    report = rebuild(drifted=True)
    assert "counts drift: player p1: per-task counts add up to 0, not 70" in report
    assert "stored 70" not in report  # the total itself is right
    rebuild("--fix")
    total = store.totals_get_many(player_ids=["p1"])["p1"]
    assert (total.total, {k: n for k, n in total.counts.items() if k.count("|") == 1}) == (70, {"t|10": 2, "t|50": 1})
    assert "0 player(s) drifted" in rebuild()


def test_the_ledger_includes_adjustments():
    """total = sum of the ledger, adjustments included: a TOTAL whose
    adjustment was lost is drift."""
    from scoring.domain import count_key

    applied("a", "p1", 50)
    adjustment = Submission(id="adj", player_id="p1", player_name="p1", task="", submitted_at=datetime.now(UTC),
                            status=Status.APPLIED, points=10, processed_at=datetime.now(UTC), rules_change=1,
                            rescore={"t": 60})
    store.scores_put_outcomes(submissions=[adjustment])
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="p1", total=60, version=1,
                                                 counts={count_key("t", 60): 1}), expected_version=0)
    assert "0 player(s) drifted" in rebuild()
    store.scores_put_outcomes(submissions=[replace(adjustment, points=15)])
    assert "player p1: stored 60, expected 65 (+5)" in rebuild(drifted=True)


def test_counts_are_not_rebuilt_while_a_batch_is_in_flight():
    """The TOTAL counts a submission whose SCORE item does not show it yet:
    counts rebuilt from the SCORE items alone would miss it."""
    applied("a", "p1", 50)
    in_flight = Submission(id="b", player_id="p1", player_name="p1", task="t", submitted_at=datetime.now(UTC))
    store.score_put(submission=in_flight)  # still pending
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="p1", total=100, version=1,
                                                 pending={"b": 50}), expected_version=0)
    report = rebuild("--fix", drifted=True)
    assert "counts drift: player p1" in report and "cannot be rebuilt" in report
    assert "1 of 1 drifted player(s) are not fixed" in report
    assert store.totals_get_many(player_ids=["p1"])["p1"].counts == {}


def test_a_batch_landing_between_the_scans_is_not_drift_and_fix_leaves_the_total_alone(monkeypatch):
    """A submission made after the SCORE scan and applied before the TOTAL
    scan is in the TOTAL, not in the ledger read: one pass would report it,
    and --fix would take its points away. Only a drift seen twice counts."""
    first = Submission(id="s1", player_id="p1", player_name="P1", task="easy", submitted_at=datetime.now(UTC))
    store.score_put(submission=first)
    processing.records_process([stream_record(first)], points_for=lambda task: 10)
    real_totals_scan = store.totals_scan
    landed = []

    def a_batch_lands_first(**kwargs):
        if not landed:  # the consumer, between the first pass's two scans
            late = Submission(id="s2", player_id="p1", player_name="P1", task="easy", submitted_at=datetime.now(UTC))
            store.score_put(submission=late)
            processing.records_process([stream_record(late, seq="2")], points_for=lambda task: 10)
            landed.append(late)
        yield from real_totals_scan(**kwargs)  # a generator, as the real one: runs once the scores are read

    monkeypatch.setattr(store, "totals_scan", a_batch_lands_first)
    report = rebuild("--fix")
    assert landed and "0 player(s) drifted; fixed 0" in report
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 20


def test_a_real_drift_of_a_player_who_keeps_playing_is_still_found_and_fixed(monkeypatch):
    """A full pass takes minutes: a player who plays during each one never
    shows the same TOTAL version twice. A check of that player alone, a
    moment long, confirms the gap the passes saw."""
    applied("a", "p1", 10)
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="p1", total=15, version=1),
                               expected_version=0)  # 5 too many: a real drift
    real_totals_scan = store.totals_scan
    played = []

    def p1_plays_during_each_pass(**kwargs):
        late = Submission(id=f"late{len(played)}", player_id="p1", player_name="p1", task="t",
                          submitted_at=datetime.now(UTC))
        store.score_put(submission=late)
        processing.records_process([stream_record(late, seq=str(len(played)))], points_for=lambda task: 10)
        played.append(late)
        yield from real_totals_scan(**kwargs)  # a generator, as the real one: runs once the scores are read

    monkeypatch.setattr(store, "totals_scan", p1_plays_during_each_pass)
    monkeypatch.setattr("scoring.drift.RECHECK_PAUSE_SECONDS", 0)  # nothing writes during the checks here
    report = rebuild("--fix")
    assert len(played) == 2
    assert "player p1: stored 35, expected 30 (-5)" in report and "fixed 1" in report
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 30  # 10 + 2 x 10 played meanwhile


def test_a_player_whose_total_never_holds_still_is_not_checked_and_says_so(monkeypatch):
    from scoring import drift

    passes = iter([15, 25])  # each pass finds the TOTAL at a new version

    def moving(**kwargs):
        stored = next(passes)
        return [drift.Drift("p1", stored, 10, PlayerTotal(player_id="p1", player_name="p1", total=stored,
                                                           version=stored))]

    monkeypatch.setattr(drift, "drifts_find", moving)
    monkeypatch.setattr(drift, "drift_of", lambda player_id, attempts: (None, False))  # never steady
    report = rebuild("--fix", drifted=True)
    assert "not checked: player p1" in report and "fixed 0" in report
    assert "1 player(s) could not be checked (above); run it again." in report
