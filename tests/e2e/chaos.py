"""What the chaos tests share: staff reviewing the hold queue as people do
(double clicks, two at once), and waiting for a process's log line."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from scoring import services, store
from scoring.domain import Review
from tests.waiting import wait_until


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


def wait_for_log(proc, text: str, timeout: float = 30) -> None:
    """Until ``text`` is in the log file of ``proc`` (its ``log_path``)."""
    wait_until(lambda: text in open(proc.log_path).read(), timeout=timeout,
               message=lambda: open(proc.log_path).read()[-3000:])
