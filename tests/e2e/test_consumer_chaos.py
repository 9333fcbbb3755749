"""Chaos: the consumer is SIGKILLed at random moments while players submit.

Afterwards every submission is applied or rejected, none lost, none counted
twice, and every total equals the sum of its applied points exactly.
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
from scoring.domain import Status, Submission
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PLAYERS = 24
SUBMISSIONS = 520
KILLS = 4
# Seeded catalog points; "retired-task" does not exist, so it is rejected.
POINTS = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50}
TASKS = [*POINTS, "retired-task"]


def submit_all(rng: random.Random, stop_at: float) -> list[Submission]:
    """Write submissions at a steady pace, as the API would (one PutItem each)."""
    written = []
    interval = (stop_at - time.monotonic()) / SUBMISSIONS
    for _ in range(SUBMISSIONS):
        player = rng.randrange(PLAYERS)
        submission = Submission(id=str(uuid.uuid4()), player_id=f"p{player}", player_name=f"Player {player}",
                                task=rng.choice(TASKS), submitted_at=datetime.now(UTC))
        store.score_put(submission=submission)
        written.append(submission)
        time.sleep(max(0.0, interval - 0.005))
    return written


def wait_for_log(consumer, text: str, timeout: float = 30) -> None:
    wait_until(lambda: text in open(consumer.log_path).read(), timeout=timeout,
               message=lambda: open(consumer.log_path).read()[-3000:])


def test_sigkilled_consumer_loses_nothing_and_counts_nothing_twice(table, start_consumer, run_consumer_once):
    rng = random.Random(20261126)
    written: list[Submission] = []
    writer = threading.Thread(target=lambda: written.extend(submit_all(rng, time.monotonic() + 12)))
    writer.start()
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
    wait_for_log(consumer, "reading arn:")  # SIGTERM before the handler is installed would just kill it
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, open(consumer.log_path).read()[-3000:]

    drain = run_consumer_once("--batch-size", "50")
    assert drain.returncode == 0, drain.stderr[-3000:]

    assert kills >= 3
    assert len(written) == SUBMISSIONS
    assert len({s.player_id for s in written}) >= 20
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    assert len(stored) == SUBMISSIONS
    statuses = Counter(s.status for s in stored.values())
    assert statuses[Status.PENDING] == 0, statuses
    for s in stored.values():
        if s.task in POINTS:
            assert (s.status, s.points) == (Status.APPLIED, POINTS[s.task]), s
        else:
            assert s.status is Status.REJECTED and s.error, s
    expected = Counter()
    for s in stored.values():
        if s.status is Status.APPLIED:
            expected[s.player_id] += s.points
    totals = store.totals_get_many(player_ids=list(expected))
    assert {p: t.total for p, t in totals.items()} == dict(expected)
