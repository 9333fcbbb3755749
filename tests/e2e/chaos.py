"""What the chaos tests share: the submissions' mix, staff reviewing the
hold queue and retrying rejections as people do (double clicks, two at
once), and waiting for a process's log line."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from scoring import services, store
from scoring.domain import Review, Status, Submission, retry_id, review_id
from tests.waiting import wait_until

# Seeded catalog points; "retired-task" does not exist, so it is rejected.
POINTS = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50}
TASKS = [*POINTS, "retired-task"]
# The seeded review times are 4.5, 9 and 24 s: a third of these are under.
ELAPSED_MS = (2_000, 30_000, 40_000)
# Lower than the default, so that the busiest players burst past it.
HOLD_ENV = {"SCORE_HOLD_RULES": "on", "SCORE_HOLD_BURST_COUNT": "15"}


def decision_for(submission_id: str) -> Review:
    """Staff approve two held submissions in three, and reject the third."""
    return Review.REJECT if int(submission_id.replace("-", ""), 16) % 3 == 0 else Review.APPROVE


def review_held(counts: Counter, *, limit: int) -> None:
    """One pass of staff over the queue: each held submission decided, some
    twice (a double click) and some by two staff members at once."""
    def decide(submission_id: str) -> bool:
        return services.submission_review(submission_id=submission_id, review=decision_for(submission_id),
                                          reviewer="staff", note="chaos")

    for held in store.held_list(limit=limit):
        with ThreadPoolExecutor(2) as pool:  # two staff members, the same decision, at once
            taken = list(pool.map(decide, [held.id, held.id]))
        again = decide(held.id)
        counts["reviews"] += sum(taken) + again
        counts["clicks"] += 3


def retry_chain(submission_id: str) -> list[Submission]:
    """A submission and its retries, in order (each retries the one before)."""
    chain = [store.score_get(submission_id=submission_id)]
    while (retry := store.score_get(submission_id=retry_id(chain[-1].id))) is not None:
        chain.append(retry)
    return chain


def retry_rejected(counts: Counter, submission_ids: list[str]) -> int:
    """One pass of staff over these submissions' rejections, on the pipeline
    page: the newest of each chain, if rejected, retried (three clicks, two
    at once), as a catalog fix would have them do. How many were."""
    def retry(submission_id: str) -> bool:
        return services.submission_retry(submission_id=submission_id, by="staff")

    retried = 0
    for submission_id in submission_ids:
        leaf = retry_chain(submission_id)[-1]
        if leaf.status is not Status.REJECTED or leaf.review is Review.REJECT:
            continue
        with ThreadPoolExecutor(2) as pool:
            taken = list(pool.map(retry, [leaf.id, leaf.id]))
        counts["retries"] += sum(taken) + retry(leaf.id)
        counts["retry_clicks"] += 3
        retried += 1
    return retried


def log_tail(proc):
    """A function giving the end of ``proc``'s log file (its ``log_path``),
    for a failure's message."""
    return lambda: open(proc.log_path).read()[-3000:]


def wait_for_log(proc, text: str, timeout: float = 30) -> None:
    """Until ``text`` is in the log file of ``proc``."""
    wait_until(lambda: text in open(proc.log_path).read(), timeout=timeout, message=log_tail(proc))


def assert_every_outcome_exact(written: list[Submission], reviews: Counter, *,
                               also_applied: Counter | None = None) -> None:
    """After a chaos run: nothing pending; every submission applied,
    rejected or held as its task and its review say; the mix the test is
    about (holds of both kinds, approvals, rejections, many more clicks than
    decisions taken) really happened; and every total is the sum of its
    applied points, exactly, with ``also_applied`` (points per player the
    caller checked apart, such as retries)."""
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    assert len(stored) == len(written)
    decided = store.scores_get_many(submission_ids=[review_id(s.id) for s in written])
    decisions = {d.review_of: d for d in decided.values()}
    statuses = Counter(s.status for s in stored.values())
    assert statuses[Status.PENDING] == 0, statuses
    assert all(d.status is not Status.PENDING for d in decided.values()), [
        (d.id, d.review, d.reviewed_at, stored[d.review_of].status, stored[d.review_of].reviewed_at,
         stored[d.review_of].processed_at) for d in decided.values() if d.status is Status.PENDING][:3]
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
        else:
            assert decision.review is decision_for(s.id), decision
            expected = (Status.APPLIED, POINTS[s.task]) if decision.review is Review.APPROVE else (
                Status.REJECTED, None)
            assert s.hold_reason and (s.status, s.points) == expected, s
    assert store.held_list(limit=len(written)) == []
    expected = Counter(also_applied or {})
    for s in stored.values():
        if s.status is Status.APPLIED:
            expected[s.player_id] += s.points
    totals = store.totals_get_many(player_ids=list(expected))
    assert {p: t.total for p, t in totals.items()} == dict(expected)
