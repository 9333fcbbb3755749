"""Pure scoring rules and value types. Standard library only.

Nothing here knows about Django, boto3 or Channels, so the rules can be read
and tested on their own.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

# Fixed namespace for deriving a submission id from an Idempotency-Key; changing
# it would make old keys map to new ids.
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0f2a5e-9d1e-4c4b-8a51-1f6f0c1e7d2a")


class Status(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Submission:
    """One task completion, as stored in a SCORE item."""

    id: str
    player_id: str
    player_name: str
    task: str
    submitted_at: datetime
    status: Status = Status.PENDING
    points: int | None = None
    error: str | None = None
    processed_at: datetime | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    rank: int
    player_id: str
    player_name: str
    total: int


@dataclass(frozen=True, slots=True)
class Page:
    """A page of results plus an opaque position to continue from."""

    items: list = field(default_factory=list)
    next_key: dict | None = None


def submission_id_new(*, player_id: str, idempotency_key: str | None) -> str:
    """A new submission id: random, or derived from the player's Idempotency-Key.

    Deriving it means a retried request targets the same SCORE item, so the
    conditional put itself detects the retry; no second item or lookup table.
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{player_id}\n{idempotency_key}"))


def utcnow() -> datetime:
    return datetime.now(UTC)
