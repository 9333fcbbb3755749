"""Signed challenge tokens: a challenge exists only in its token.

Issuing writes nothing anywhere. The token carries the challenge id, the
player, the task, the question seed, the issue time and the challenge's
terms (what it asks, fixed when it was issued: scoring/verification.py),
signed with
Django's signing (``signing.dumps``: an HMAC keyed from ``SECRET_KEY``,
salted so no other signed value of the project can pass for a challenge).
Verifying is one HMAC; the questions are regenerated from the seed by
scoring/challenges.py. Rotating ``SECRET_KEY`` keeps open challenges valid
while the old key is listed in ``SECRET_KEY_FALLBACKS``, which
``signing.loads`` tries after the current key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core import signing

SALT = "scoring.challenge.v1"


class ChallengeInvalid(Exception):
    """Malformed, tampered with, or signed with a key no longer accepted."""


class ChallengeExpired(Exception):
    """Genuine, but older than it may be."""


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    player_id: str
    task: str
    seed: int
    issued_at: datetime
    terms: list | None = None  # None in tokens issued before terms were carried


def challenge_issue(*, player_id: str, task: str, now: datetime | None = None,
                    terms: list | None = None) -> tuple[str, Challenge]:
    """A new challenge and its token. Nothing is written. ``terms`` (JSON)
    travel in the token, signed with the rest."""
    issued_ms = int((now or datetime.now(UTC)).timestamp() * 1000)  # the token keeps milliseconds
    challenge = Challenge(id=secrets.token_hex(16), player_id=player_id, task=task, seed=secrets.randbits(63),
                          issued_at=datetime.fromtimestamp(issued_ms / 1000, UTC), terms=terms)
    payload = {"c": challenge.id, "p": player_id, "t": task, "s": challenge.seed, "i": issued_ms}
    if terms is not None:
        payload["q"] = terms
    return signing.dumps(payload, salt=SALT), challenge


def challenge_load(*, token: str, max_age_seconds: float, now: datetime | None = None) -> Challenge:
    """The challenge a token carries. Raises ChallengeInvalid for anything
    not signed by us, ChallengeExpired once it is older than ``max_age_seconds``."""
    if not isinstance(token, str) or not token:
        raise ChallengeInvalid("the challenge token is missing or not a string")
    try:
        payload = signing.loads(token, salt=SALT)
        issued_at = datetime.fromtimestamp(payload["i"] / 1000, UTC)
        terms = payload.get("q")
        if terms is not None and not isinstance(terms, list):
            raise TypeError("terms")
        challenge = Challenge(id=str(payload["c"]), player_id=str(payload["p"]), task=str(payload["t"]),
                              seed=int(payload["s"]), issued_at=issued_at, terms=terms)
    except signing.BadSignature as exc:
        raise ChallengeInvalid("the challenge token is not one this server issued") from exc
    except (KeyError, TypeError, ValueError) as exc:  # signed by us, but not a challenge's shape
        raise ChallengeInvalid("the challenge token is malformed") from exc
    age = ((now or datetime.now(UTC)) - challenge.issued_at).total_seconds()
    if age > max_age_seconds:
        raise ChallengeExpired(f"the challenge expired {age - max_age_seconds:.0f} s ago")
    return challenge
