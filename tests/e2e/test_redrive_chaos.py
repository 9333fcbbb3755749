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
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from scoring import store
from scoring.domain import Status, Submission, review_id, utcnow
from tests.conftest import command_starter
from tests.e2e.chaos import ELAPSED_MS, HOLD_ENV, TASKS, assert_every_outcome_exact, log_tail, review_held, wait_for_log

pytestmark = pytest.mark.slow

PLAYERS = 12
SUBMISSIONS = 500
KILLS = 6
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
    with command_starter(["redrive_pending"], consumer_env, tmp_path, "redrive") as start:
        yield start


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
        assert redrive.wait(timeout=120) == 0, log_tail(redrive)()
        review_held(reviews, limit=SUBMISSIONS)
    redrive = start_redrive(*REDRIVE)
    assert redrive.wait(timeout=120) == 0, log_tail(redrive)()
    assert "0 submission(s) pending for over 0s" in open(redrive.log_path).read()
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    decided = store.scores_get_many(submission_ids=[review_id(s.id) for s in written])
    assert [s.id for s in (*stored.values(), *decided.values()) if s.status is Status.PENDING] == []
    # Every record was only late after all: the consumer finds them settled.
    drain = run_consumer_once("--batch-size", "100")
    assert drain.returncode == 0, drain.stderr[-3000:]
    assert re.search(r"final: .* read=[1-9]\d* applied=0 rejected=0 dlq=0 ", drain.stderr), drain.stderr[-3000:]

    assert store.scores_get_many(submission_ids=[s.id for s in written]) == stored
    assert_every_outcome_exact(written, reviews)
