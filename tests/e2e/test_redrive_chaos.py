"""Chaos: redrive_pending is SIGKILLed at random moments while it processes
stranded submissions and staff review what the hold rules held.

The submissions were written two hours ago and no consumer ever processed
them, as when the stream trimmed their records or Lambda gave up on their
batch. The hold rules are on, so some are held, and staff decide those
between the runs, some twice and some two at once; their decisions are
stranded too (no consumer runs), so the re-drive processes them as well.
Afterwards a consumer reads the whole stream from its start, as if every
record had only been late: it finds them all settled. Every submission is
applied, rejected or still held, as its review says; none is lost, none
counted twice, and every total equals the sum of its applied points.
"""

import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from scoring import store
from scoring.domain import Review, Status, Submission, review_id, utcnow
from tests.conftest import ROOT
from tests.e2e.chaos import decision_for, review_held, wait_for_log

pytestmark = pytest.mark.slow

PLAYERS = 12
SUBMISSIONS = 500
KILLS = 6
# Seeded catalog points; "retired-task" does not exist, so it is rejected.
POINTS = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50}
TASKS = [*POINTS, "retired-task"]
# The seeded review times are 4.5, 9 and 24 s: a third of these are under.
ELAPSED_MS = (2_000, 30_000, 40_000)
HOLD_ENV = {"SCORE_HOLD_RULES": "on", "SCORE_HOLD_BURST_COUNT": "15"}
REDRIVE = ("--older-than", "0s", "--batch-size", "10")


def strand_all(rng: random.Random) -> list[Submission]:
    """Submissions the API wrote two hours ago, over two minutes, still pending."""
    start = utcnow() - timedelta(hours=2)
    written = []
    for i in range(SUBMISSIONS):
        player = rng.randrange(PLAYERS)
        submission = Submission(id=str(uuid.uuid4()), player_id=f"p{player}", player_name=f"Player {player}",
                                task=rng.choice(TASKS), submitted_at=start + timedelta(milliseconds=240 * i),
                                elapsed_ms=rng.choice(ELAPSED_MS), verified_by="challenge")
        store.score_put(submission=submission)
        written.append(submission)
    return written


@pytest.fixture
def start_redrive(consumer_env, tmp_path):
    """Start `manage.py redrive_pending` processes; all are killed at teardown."""
    procs = []

    def start(*args):
        log = open(tmp_path / f"redrive-{len(procs)}.log", "ab")
        proc = subprocess.Popen([sys.executable, "manage.py", "redrive_pending", *args], cwd=ROOT, env=consumer_env,
                                stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = log.name
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_sigkilled_redrive_loses_nothing_and_counts_nothing_twice(table, consumer_env, start_redrive,
                                                                 run_consumer_once):
    consumer_env.update(HOLD_ENV)
    rng = random.Random(20261207)
    written = strand_all(rng)
    reviews = Counter()
    for _ in range(KILLS):
        redrive = start_redrive(*REDRIVE)
        # Killed once it is processing, at a random moment: likely mid-batch,
        # between a TOTAL write and the outcomes (the chaos, not a wait).
        wait_for_log(redrive, "processed ")
        time.sleep(rng.uniform(0.05, 0.6))
        redrive.send_signal(signal.SIGKILL)
        redrive.wait(timeout=10)
        assert "re-drove" not in open(redrive.log_path).read()  # it was killed at work, not after
        review_held(reviews, limit=SUBMISSIONS)  # staff decide what it held so far

    for _ in range(2):  # the rest, then the decisions on the last holds
        redrive = start_redrive(*REDRIVE)
        assert redrive.wait(timeout=120) == 0, open(redrive.log_path).read()[-3000:]
        review_held(reviews, limit=SUBMISSIONS)
    redrive = start_redrive(*REDRIVE)
    assert redrive.wait(timeout=120) == 0, open(redrive.log_path).read()[-3000:]
    assert "0 submission(s) pending for over 0s" in open(redrive.log_path).read()
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    decided = store.scores_get_many(submission_ids=[review_id(s.id) for s in written])
    assert [s.id for s in (*stored.values(), *decided.values()) if s.status is Status.PENDING] == []
    # Every record was only late after all: the consumer finds them settled.
    drain = run_consumer_once("--batch-size", "100")
    assert drain.returncode == 0, drain.stderr[-3000:]
    assert re.search(r"final: .* read=[1-9]\d* applied=0 rejected=0 dlq=0 ", drain.stderr), drain.stderr[-3000:]

    assert store.scores_get_many(submission_ids=[s.id for s in written]) == stored
    assert len(stored) == SUBMISSIONS
    decisions = {d.review_of: d for d in decided.values()}
    assert Counter(s.status for s in stored.values())[Status.PENDING] == 0
    assert all(d.status is not Status.PENDING for d in decided.values())
    # The mix this test is about: holds of both kinds, approvals and
    # rejections, many more clicks than decisions taken.
    reasons = Counter(s.hold_reason.split(":")[0] for s in stored.values() if s.hold_reason)
    assert reasons["fast"] >= 20 and reasons["burst"] >= 5, reasons
    assert Counter(d.review for d in decisions.values())[Review.APPROVE] >= 20
    assert Counter(d.review for d in decisions.values())[Review.REJECT] >= 10
    assert len(decisions) <= reviews["reviews"] < reviews["clicks"]
    for s in stored.values():
        decision = decisions.get(s.id)
        if s.task not in POINTS:
            assert s.status is Status.REJECTED and s.error and decision is None, s
        elif decision is None:
            assert s.status is Status.APPLIED and s.points == POINTS[s.task] and not s.hold_reason, s
        else:
            assert decision.review is decision_for(s.id)
            expected = (Status.APPLIED, POINTS[s.task]) if decision.review is Review.APPROVE else (
                Status.REJECTED, None)
            assert s.hold_reason and (s.status, s.points) == expected, s
    assert store.held_list(limit=SUBMISSIONS) == []
    expected = Counter()
    for s in stored.values():
        if s.status is Status.APPLIED:
            expected[s.player_id] += s.points
    totals = store.totals_get_many(player_ids=list(expected))
    assert {p: t.total for p, t in totals.items()} == dict(expected)
