"""Writes. The score API has exactly one: a SCORE item in DynamoDB."""

from datetime import datetime

from scoring import store, verification
from scoring.domain import Review, Submission, challenge_submission_id, submission_id_new, utcnow
from scoring.selectors import task_get_active


class TaskNotAvailable(Exception):
    """The task does not exist or is inactive."""


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused for a different request."""


class SubmissionUnconfirmed(store.StoreUnavailable):
    """DynamoDB did not confirm the write of ``submission_id``: it may or may
    not be stored. The client can GET it, or resend the same request."""

    def __init__(self, message: str, *, submission_id: str):
        super().__init__(message)
        self.submission_id = submission_id


def submission_create(
    *, player_id: str, player_name: str, task_slug: str, idempotency_key: str | None = None,
    challenge: object = None, answers: list[int] | None = None, trusted_by: str | None = None,
    now: datetime | None = None,
) -> tuple[Submission, bool]:
    """Record a task completion as a pending submission.

    With a ``challenge`` token, the play is verified first (scoring/
    verification.py; a PlayRefused says what is wrong) and the submission's
    id derives from the challenge, so one challenge counts at most once.
    Without one, only a trusted client (``trusted_by``: its username) may
    submit; anyone else gets PlayRequired.

    Returns (submission, created). A repeat (same challenge, or same
    Idempotency-Key) returns the original with created=False and writes
    nothing. Scoring happens later, in the stream consumer; this writes one
    DynamoDB item and nothing else.
    """
    now = now or utcnow()
    if challenge is None:
        if trusted_by is None:
            raise verification.PlayRequired(
                "Play the challenge: POST /api/tasks/<slug>/challenges/, then submit its token and your answers.")
        if task_get_active(slug=task_slug) is None:
            raise TaskNotAvailable(task_slug)
        submission_id = submission_id_new(player_id=player_id, idempotency_key=idempotency_key)
        evidence = {"verified_by": f"trusted:{trusted_by}"}
    else:
        try:
            played = verification.play_verify(token=challenge, answers=answers or [], player_id=player_id,
                                              task_slug=task_slug, task_for=lambda slug: task_get_active(slug=slug),
                                              now=now)
        except verification.TaskUnavailable:
            raise TaskNotAvailable(task_slug) from None
        except verification.ChallengeExpired as exc:
            # Expired now, but perhaps answered in time by a request whose
            # answer was lost: then the truth is the original, not a 410.
            original = store.score_get(submission_id=challenge_submission_id(exc.challenge_id))
            if original is not None:
                return original, False
            raise
        submission_id = challenge_submission_id(played.challenge_id)
        evidence = {"challenge_id": played.challenge_id, "elapsed_ms": played.elapsed_ms,
                    "verified_by": verification.VERIFIED_BY_CHALLENGE}
    submission = Submission(id=submission_id, player_id=player_id, player_name=player_name, task=task_slug,
                            submitted_at=now, idempotency_key=idempotency_key, **evidence)
    try:
        store.score_put(submission=submission)
    except store.SubmissionExists as exc:
        existing = exc.existing
        if existing.submitted_at == submission.submitted_at and existing.player_id == player_id:
            # Our own write: DynamoDB stored it, its answer was lost, and
            # botocore's retry met the item. This request created it.
            return existing, True
        if challenge is None and existing.task != task_slug:
            raise IdempotencyConflict(idempotency_key) from None
        return existing, False
    except store.StoreUnavailable as exc:
        raise SubmissionUnconfirmed(str(exc), submission_id=submission_id) from exc
    return submission, True


def submission_retry(*, submission_id: str, by: str | None = None) -> bool:
    """Send a rejected submission through the pipeline again, exactly once,
    recording who (``by``) did.

    Returns False if it was not rejected, was rejected in review, or was
    already retried (a review's id retries the submission it decided).
    """
    return store.score_retry(submission_id=submission_id, now=utcnow(), by=by) is not None


def submission_review(*, submission_id: str, review: Review, reviewer: str, note: str = "") -> bool:
    """Approve or reject a held submission, exactly once.

    The decision is a SCORE item of its own, processed by the stream like
    any submission: approved, the held submission applies with its task's
    points; rejected, it is rejected with the note. Returns False if it was
    not held, or was already reviewed (a double click, or another staff
    member first): nothing is written then.
    """
    return store.score_review(submission_id=submission_id, review=review, reviewer=reviewer, note=note,
                              now=utcnow()) is not None
