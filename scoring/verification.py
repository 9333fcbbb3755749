"""Server-verified play: issuing a task's challenge, and checking an answer.

A challenge exists only in its signed token (scoring/challenge_tokens.py);
its questions are regenerated from the token's seed and the task's spec
(scoring/challenges.py). Verifying costs one HMAC and some arithmetic, and
reads nothing but the cached catalog.

The checks run in a fixed order, each refusal its own exception, so that a
client learns the first thing wrong: the signature, the player, the task,
the expiry, the time taken (``Difficulty.min_seconds``), then the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from scoring import challenge_tokens
from scoring.challenges import Question, answers_check, questions_generate
from scoring.models import Task

VERIFIED_BY_CHALLENGE = "challenge"


class PlayRefused(Exception):
    """A submission whose play does not stand. ``code`` names the check."""

    code = "play_refused"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class ChallengeInvalid(PlayRefused):
    code = "challenge_invalid"


class ChallengeNotYours(PlayRefused):
    code = "challenge_not_yours"


class ChallengeTaskMismatch(PlayRefused):
    code = "challenge_task_mismatch"


class ChallengeExpired(PlayRefused):
    code = "challenge_expired"

    def __init__(self, detail: str, *, challenge_id: str):
        super().__init__(detail)
        self.challenge_id = challenge_id


class TooFast(PlayRefused):
    code = "too_fast"


class WrongAnswers(PlayRefused):
    code = "wrong_answers"

    def __init__(self, detail: str, *, wrong: list[int]):
        super().__init__(detail)
        self.wrong = wrong


class PlayRequired(PlayRefused):
    code = "play_required"


class TaskUnavailable(PlayRefused):
    code = "task_unavailable"


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    token: str
    task: str
    questions: list[Question]
    issued_at: datetime
    expires_at: datetime
    min_seconds: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a verified submission records on its SCORE item."""

    challenge_id: str
    elapsed_ms: int


def challenge_questions(task: Task, seed: int) -> list[Question]:
    count, spec = task.question_spec()
    return questions_generate(seed=seed, spec=spec, count=count)


def challenge_new(*, player_id: str, task: Task, now: datetime) -> IssuedChallenge:
    """A new challenge of this task for this player. Writes nothing."""
    token, challenge = challenge_tokens.challenge_issue(player_id=player_id, task=task.slug, now=now)
    return IssuedChallenge(
        token=token, task=task.slug, questions=challenge_questions(task, challenge.seed),
        issued_at=challenge.issued_at,
        expires_at=challenge.issued_at + timedelta(seconds=settings.CHALLENGE_TTL_SECONDS),
        min_seconds=task.difficulty.min_seconds,
    )


def play_verify(*, token: object, answers: list[int], player_id: str, task_slug: str,
                task_for, now: datetime) -> Evidence:
    """The evidence of a challenge played right, or the first PlayRefused.

    ``task_for(slug)`` gives the active task (None: not available); it is
    asked only once the token is known to be ours, for the token's task.
    """
    try:
        challenge = challenge_tokens.challenge_load(token=token, max_age_seconds=float("inf"), now=now)
    except challenge_tokens.ChallengeInvalid as exc:
        raise ChallengeInvalid(f"Invalid challenge: {exc}.") from None
    if challenge.player_id != player_id:
        raise ChallengeNotYours("This challenge was issued to another player.")
    if challenge.task != task_slug:
        raise ChallengeTaskMismatch(f"This challenge is for task {challenge.task!r}, not {task_slug!r}.")
    elapsed_ms = int((now - challenge.issued_at).total_seconds() * 1000)
    ttl = settings.CHALLENGE_TTL_SECONDS
    if elapsed_ms > ttl * 1000:
        raise ChallengeExpired(f"This challenge expired {elapsed_ms / 1000 - ttl:.0f} s ago "
                               f"(challenges last {ttl:g} s); start a new one.", challenge_id=challenge.id)
    task = task_for(task_slug)
    if task is None:
        raise TaskUnavailable(f"Task {task_slug!r} is unknown or inactive.")
    min_ms = int(task.difficulty.min_seconds * 1000)
    if elapsed_ms < min_ms:
        raise TooFast(f"Answered in {elapsed_ms / 1000:.1f} s; a {task.difficulty.name} challenge takes "
                      f"at least {task.difficulty.min_seconds:g} s.")
    questions = challenge_questions(task, challenge.seed)
    wrong = answers_check(questions=questions, answers=answers)
    if wrong:
        count = len(questions)
        detail = (f"Expected {count} answers, got {len(answers)}." if len(answers) != count
                  else f"{len(wrong)} of {count} answers are wrong.")
        raise WrongAnswers(detail, wrong=wrong)
    return Evidence(challenge_id=challenge.id, elapsed_ms=elapsed_ms)
