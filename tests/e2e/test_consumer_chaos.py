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
from scoring.domain import Review, Status, Submission, review_id
from tests.e2e.chaos import review_held, wait_for_log

pytestmark = pytest.mark.slow

PLAYERS = 24
SUBMISSIONS = 520
KILLS = 4
# Seeded catalog points; "retired-task" does not exist, so it is rejected.
POINTS = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50}
TASKS = [*POINTS, "retired-task"]
# The seeded review times are 4.5, 9 and 24 s: a third of these are under.
ELAPSED_MS = (2_000, 30_000, 40_000)
# Lower than the default, so that the busiest players burst past it.
HOLD_ENV = {"SCORE_HOLD_RULES": "on", "SCORE_HOLD_BURST_COUNT": "15"}


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
    assert consumer.wait(timeout=30) == 0, open(consumer.log_path).read()[-3000:]

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
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    assert len(stored) == SUBMISSIONS
    decided = store.scores_get_many(submission_ids=[review_id(s.id) for s in written])
    decisions = {d.review_of: d for d in decided.values()}
    statuses = Counter(s.status for s in stored.values())
    assert statuses[Status.PENDING] == 0, statuses
    assert all(d.status is not Status.PENDING for d in decided.values()), [
        (d.id, d.review, d.reviewed_at, stored[d.review_of].status, stored[d.review_of].reviewed_at,
         stored[d.review_of].processed_at) for d in decided.values() if d.status is Status.PENDING][:3]
    # The mix this test is about: holds of both kinds, approvals, rejections,
    # and many more clicks than decisions taken.
    reasons = Counter(s.hold_reason.split(":")[0] for s in stored.values() if s.hold_reason)
    assert reasons["fast"] >= 20 and reasons["burst"] >= 5, reasons
    assert Counter(d.review for d in decisions.values())[Review.APPROVE] >= 20
    assert Counter(d.review for d in decisions.values())[Review.REJECT] >= 10
    # Of three clicks on each, one decision stands. (moto's conditional put
    # is not atomic, as DynamoDB's is: it reads the item, checks, then
    # stores, without a lock, so two staff at the same instant can both
    # "win" there, writing the same decision twice. It is the same item, so
    # the totals below still count it once.)
    assert len(decisions) <= reviews["reviews"] < reviews["clicks"]
    for s in stored.values():
        decision = decisions.get(s.id)
        if s.task not in POINTS:
            assert s.status is Status.REJECTED and s.error and decision is None, s
        elif decision is None:
            assert s.status is Status.APPLIED and s.points == POINTS[s.task] and not s.hold_reason, s
        elif decision.review is Review.APPROVE:
            assert s.hold_reason and (s.status, s.points) == (Status.APPLIED, POINTS[s.task]), s
        else:
            assert s.hold_reason and s.status is Status.REJECTED and s.points is None, s
    assert store.held_list(limit=SUBMISSIONS) == []
    expected = Counter()
    for s in stored.values():
        if s.status is Status.APPLIED:
            expected[s.player_id] += s.points
    totals = store.totals_get_many(player_ids=list(expected))
    assert {p: t.total for p, t in totals.items()} == dict(expected)
