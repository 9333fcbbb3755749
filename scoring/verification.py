"""Server-verified play: issuing a task's challenge, and checking an answer.

A challenge exists only in its signed token (scoring/challenge_tokens.py);
its questions are regenerated from the token's seed and the terms it was
issued with (``Terms``: scoring/challenges.py's spec, the question count and
``min_seconds``). Verifying costs one HMAC and some arithmetic, and
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
from scoring.challenges import RANGES, Question, QuestionSpec, answers_check, questions_generate
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


@dataclass(frozen=True, slots=True)
class Terms:
    """What a challenge asks: how many questions, of which spec, and its
    ``min_seconds``. Fixed when it is issued and carried in its signed
    token, so an admin's later edit of the task or its difficulty applies
    to the challenges issued after it, never to one a player is answering."""

    count: int
    min_seconds: float
    spec: QuestionSpec

    @classmethod
    def of(cls, task: Task) -> Terms:
        count, spec = task.question_spec()
        return cls(count=count, min_seconds=task.difficulty.min_seconds, spec=spec)

    def to_json(self) -> list:
        """Compact, for the token: [count, min_seconds, ops, [low, high of each range]]."""
        return [self.count, self.min_seconds, "".join(self.spec.ops),
                [bound for name in RANGES for bound in getattr(self.spec, name)]]

    @classmethod
    def from_json(cls, raw: list) -> Terms:
        """Raises ValueError, TypeError or IndexError for anything else."""
        count, min_seconds, ops, bounds = raw
        if len(bounds) != 2 * len(RANGES):
            raise ValueError("ranges")
        ranges = {name: (bounds[2 * i], bounds[2 * i + 1]) for i, name in enumerate(RANGES)}
        return cls(count=int(count), min_seconds=float(min_seconds), spec=QuestionSpec(ops=tuple(ops), **ranges))

    def questions(self, seed: int) -> list[Question]:
        return questions_generate(seed=seed, spec=self.spec, count=self.count)


def challenge_new(*, player_id: str, task: Task, now: datetime) -> IssuedChallenge:
    """A new challenge of this task for this player. Writes nothing."""
    terms = Terms.of(task)
    token, challenge = challenge_tokens.challenge_issue(player_id=player_id, task=task.slug, now=now,
                                                        terms=terms.to_json())
    return IssuedChallenge(
        token=token, task=task.slug, questions=terms.questions(challenge.seed),
        issued_at=challenge.issued_at,
        expires_at=challenge.issued_at + timedelta(seconds=settings.CHALLENGE_TTL_SECONDS),
        min_seconds=terms.min_seconds,
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
    try:
        issued_terms = Terms.from_json(challenge.terms) if challenge.terms is not None else None
    except (ValueError, TypeError, IndexError):  # signed by us, so never from a client: a bug, said plainly
        raise ChallengeInvalid("Invalid challenge: the challenge token is malformed.") from None
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
    terms = issued_terms or Terms.of(task)  # a token from before terms were carried: today's
    if elapsed_ms < int(terms.min_seconds * 1000):
        # The challenge's own floor (its terms), not the task's now: staff may have moved it since.
        raise TooFast(f"Answered in {elapsed_ms / 1000:.1f} s; this challenge takes at least "
                      f"{terms.min_seconds:g} s.")
    questions = terms.questions(challenge.seed)
    wrong = answers_check(questions=questions, answers=answers)
    if wrong:
        count = len(questions)
        detail = (f"Expected {count} answers, got {len(answers)}." if len(answers) != count
                  else f"{len(wrong)} of {count} answers {'is' if len(wrong) == 1 else 'are'} wrong.")
        raise WrongAnswers(detail, wrong=wrong)
    return Evidence(challenge_id=challenge.id, elapsed_ms=elapsed_ms)
