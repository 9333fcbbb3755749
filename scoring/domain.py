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
    retry_of: str | None = None  # the rejected submission this one retries


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


def retry_id(submission_id: str) -> str:
    """The one id a retry of this submission can have: a second retry is the
    same item, which the conditional put refuses."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"retry\n{submission_id}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the stream consumer's rules ------------------------------------------


@dataclass(slots=True)
class PlayerTotal:
    """A player's TOTAL item.

    ``pending`` maps submission id -> points for submissions already added to
    ``total`` whose SCORE item may not show the outcome yet. It is what makes
    applying a record idempotent without a transaction: a replayed record
    whose id is here is not added again (see docs/consumer.md). ``rejected``
    does the same for rejections (id -> error), so that every decision is
    committed by one version-checked TOTAL write and a second worker on the
    same records follows it instead of deciding again.
    """

    player_id: str
    player_name: str
    total: int = 0
    version: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    reached_at_ms: int = 0
    # Points per leaderboard window, e.g. {"day:2026-11-26": 30, "week:2026-W48": 80}:
    # absolute values, so the read model can be set (not incremented) from them.
    windows: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    # Listed on the leaderboard once points were added, as the Redis boards
    # list only totals above 0. A player whose submissions were all rejected
    # has a TOTAL (for ``rejected``) but no rank.
    on_leaderboard: bool = True


WINDOWS = ("all", "week", "day")


def window_keys(moment: datetime) -> dict[str, str]:
    """The leaderboard periods a moment falls in (UTC): {"week": ..., "day": ...}."""
    moment = moment.astimezone(UTC)
    year, week, _ = moment.isocalendar()
    return {"week": f"week:{year}-W{week:02d}", "day": f"day:{moment.date().isoformat()}"}


def _prune_windows(windows: dict[str, int], keep: int = 2) -> dict[str, int]:
    """Keep each kind's ``keep`` most recent periods; older ones can no longer
    be shown, and the item must not grow forever."""
    kept: dict[str, int] = {}
    for kind in ("week", "day"):
        keys = sorted((k for k in windows if k.startswith(kind + ":")), reverse=True)[:keep]
        kept.update({k: windows[k] for k in keys})
    return kept


@dataclass(frozen=True, slots=True)
class Decision:
    submission: Submission
    status: Status
    points: int | None = None
    error: str | None = None


def decide(submission: Submission, points: int | None) -> Decision:
    """Applied with the task's points, or rejected when the task is gone."""
    if points is None:
        return Decision(submission, Status.REJECTED, error=f"Task {submission.task!r} no longer exists.")
    return Decision(submission, Status.APPLIED, points=points)


@dataclass(frozen=True, slots=True)
class TotalChange:
    """What one batch does to one player's total."""

    new_total: PlayerTotal
    applied: list[Decision]  # decisions whose points are in new_total
    rejected: list[Decision]  # decisions recorded as rejected in new_total
    added: int  # points added by this batch (0 on a pure replay)


def fold_player(
    current: PlayerTotal,
    *,
    fresh: list[Decision],
    settled_ids: set[str],
) -> TotalChange:
    """Fold a batch's decisions for one player into one new TOTAL.

    ``fresh`` are decisions for submissions whose SCORE item is still
    pending. Those already in ``current.pending`` or ``current.rejected``
    were decided by an earlier attempt (one that crashed before writing
    outcomes, or another worker on the same records): that decision stands,
    with the points it was added with, and nothing is added again.
    ``settled_ids`` are submissions whose SCORE item already shows an
    outcome; they leave both maps.
    """
    pending = {k: v for k, v in current.pending.items() if k not in settled_ids}
    rejected = {k: v for k, v in current.rejected.items() if k not in settled_ids}
    windows = dict(current.windows)
    applied: list[Decision] = []
    rejections: list[Decision] = []
    added = 0
    reached = current.reached_at_ms
    for decision in fresh:
        sub_id = decision.submission.id
        if sub_id in pending:
            applied.append(Decision(decision.submission, Status.APPLIED, points=pending[sub_id]))
        elif sub_id in rejected:
            rejections.append(Decision(decision.submission, Status.REJECTED, error=rejected[sub_id]))
        elif decision.status is not Status.APPLIED:
            rejected[sub_id] = decision.error or "Rejected."
            rejections.append(decision)
        else:
            pending[sub_id] = decision.points
            added += decision.points
            applied.append(decision)
            reached = max(reached, int(decision.submission.submitted_at.timestamp() * 1000))
            # Windows count by when the task was played, not when it was scored.
            for key in window_keys(decision.submission.submitted_at).values():
                windows[key] = windows.get(key, 0) + decision.points
    new_total = PlayerTotal(
        player_id=current.player_id,
        player_name=fresh[-1].submission.player_name if fresh else current.player_name,
        total=current.total + added,
        version=current.version + 1,
        pending=pending,
        reached_at_ms=reached if added else current.reached_at_ms,
        windows=_prune_windows(windows),
        rejected=rejected,
        on_leaderboard=current.on_leaderboard or added > 0,
    )
    return TotalChange(new_total=new_total, applied=applied, rejected=rejections, added=added)
