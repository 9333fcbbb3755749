"""Chaos: the consumer is SIGKILLed at random moments while players submit
and staff review what the hold rules held.

The hold rules are on: some completions are too fast (under their
difficulty's review time) and some players burst past the limit, so the
stream holds them; meanwhile staff approve or reject held ones, some twice
(a double click) and some from two threads at once. Afterwards every
submission is applied, rejected or still held, as its review says; none is
lost, none counted twice, and every total equals the sum of its applied
points exactly.
"""

import random
import signal
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from scoring import store
from scoring.domain import Submission
from tests.e2e.chaos import ELAPSED_MS, HOLD_ENV, TASKS, assert_every_outcome_exact, log_tail, review_held, wait_for_log

pytestmark = pytest.mark.slow

PLAYERS = 24
SUBMISSIONS = 520
KILLS = 4


def submit_all(rng: random.Random, stop_at: float) -> list[Submission]:
    """Write submissions at a steady pace, as the API would (one PutItem each)."""
    written = []
    interval = (stop_at - time.monotonic()) / SUBMISSIONS
    for _ in range(SUBMISSIONS):
        player = rng.randrange(PLAYERS)
        submission = Submission(id=str(uuid.uuid4()), player_id=f"p{player}", player_name=f"Player {player}",
                                task=rng.choice(TASKS), submitted_at=datetime.now(UTC),
                                elapsed_ms=rng.choice(ELAPSED_MS), verified_by="challenge")
        store.score_put(submission=submission)
        written.append(submission)
        time.sleep(max(0.0, interval - 0.005))
    return written


def test_sigkilled_consumer_loses_nothing_and_counts_nothing_twice(table, start_consumer, run_consumer_once,
                                                                  consumer_env):
    consumer_env.update(HOLD_ENV)
    rng = random.Random(20261126)
    written: list[Submission] = []
    writer = threading.Thread(target=lambda: written.extend(submit_all(rng, time.monotonic() + 12)))
    reviews = Counter()

    def staff():
        while writer.is_alive():
            review_held(reviews, limit=SUBMISSIONS)
            time.sleep(0.3)  # staff's pace, not a wait for anything

    reviewer = threading.Thread(target=staff)
    writer.start()
    reviewer.start()
    kills = 0
    consumer = start_consumer("--batch-size", "10")
    while writer.is_alive() or kills < KILLS:
        # A kill before it holds the shard tests nothing. After a kill the
        # next one waits out the dead one's lease (3 s) besides starting up,
        # so wait for the lease, then kill at a random moment, likely
        # mid-batch (the chaos, not a wait).
        wait_for_log(consumer, "Took the lease on")
        time.sleep(rng.uniform(0.2, 1.5))
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(timeout=10)
        kills += 1
        consumer = start_consumer("--batch-size", "10")
    writer.join()
    reviewer.join()
    wait_for_log(consumer, "reading arn:")  # SIGTERM before the handler is installed would just kill it
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, log_tail(consumer)()

    drain = run_consumer_once("--batch-size", "50")
    assert drain.returncode == 0, drain.stderr[-3000:]
    # What was held after the writer stopped: staff decide it too, then the
    # stream applies those decisions.
    review_held(reviews, limit=SUBMISSIONS)
    drain = run_consumer_once("--batch-size", "50")
    assert drain.returncode == 0, drain.stderr[-3000:]

    assert kills >= 3
    assert len(written) == SUBMISSIONS
    assert len({s.player_id for s in written}) >= 20
    assert_every_outcome_exact(written, reviews)
