"""rebuild_totals finds drift between totals and applied scores, and fixes it."""

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from scoring import processing, store
from scoring.domain import PlayerTotal, Status, Submission
from tests.records import stream_record

pytestmark = pytest.mark.usefixtures("table")


def applied(sub_id, player, points):
    submission = Submission(id=sub_id, player_id=player, player_name=player, task="t",
                            submitted_at=datetime.now(UTC), status=Status.APPLIED, points=points,
                            processed_at=datetime.now(UTC))
    store.scores_put_outcomes(submissions=[submission])


def rebuild(*args):
    out = StringIO()
    call_command("rebuild_totals", "--no-progress", *args, stdout=out)
    return out.getvalue()


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
    report = rebuild()
    assert "player p1: stored 99, expected 35 (-64)" in report
    assert "player p2: stored 0, expected 50 (+50)" in report
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 99  # report only
    fixed = rebuild("--fix")
    assert "fixed 2" in fixed
    totals = store.totals_get_many(player_ids=["p1", "p2"])
    assert (totals["p1"].total, totals["p2"].total) == (35, 50)
    assert "0 player(s) drifted" in rebuild()
