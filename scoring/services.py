"""Writes. The score API has exactly one: a SCORE item in DynamoDB."""

from scoring import store
from scoring.domain import Submission, submission_id_new, utcnow
from scoring.selectors import task_get_active


class TaskNotAvailable(Exception):
    """The task does not exist or is inactive."""


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused for a different request."""


def submission_create(
    *, player_id: str, player_name: str, task_slug: str, idempotency_key: str | None = None
) -> tuple[Submission, bool]:
    """Record a task completion as a pending submission.

    Returns (submission, created). A retry with the same Idempotency-Key
    returns the original with created=False and writes nothing. Scoring
    happens later, in the stream consumer; this writes one DynamoDB item and
    nothing else.
    """
    if task_get_active(slug=task_slug) is None:
        raise TaskNotAvailable(task_slug)
    submission = Submission(
        id=submission_id_new(player_id=player_id, idempotency_key=idempotency_key),
        player_id=player_id,
        player_name=player_name,
        task=task_slug,
        submitted_at=utcnow(),
        idempotency_key=idempotency_key,
    )
    try:
        store.score_put(submission=submission)
    except store.SubmissionExists as exc:
        if exc.existing.task != task_slug:
            raise IdempotencyConflict(idempotency_key) from None
        return exc.existing, False
    return submission, True


def submission_retry(*, submission_id: str) -> bool:
    """Send a rejected submission through the pipeline again, exactly once.

    Returns False if it was not rejected, or was already retried.
    """
    return store.score_retry(submission_id=submission_id, now=utcnow()) is not None
