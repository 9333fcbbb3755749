"""Pure scoring rules and value types. Standard library only.

Nothing here knows about Django, boto3 or Channels, so the rules can be read
and tested on their own.
"""

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

# Fixed namespace for deriving a submission id from an Idempotency-Key; changing
# it would make old keys map to new ids.
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0f2a5e-9d1e-4c4b-8a51-1f6f0c1e7d2a")
# What every submission id looks like (a UUID, as the functions below make
# them): anything else names no submission.
SUBMISSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Status(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"
    HELD = "held"  # quarantined for staff review; counts nowhere until approved


class Review(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


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
    # The evidence of play (see scoring/verification.py): the challenge it
    # answered, how long after the challenge was issued, and who vouched:
    # "challenge", or "trusted:<username>" for a trusted game server.
    challenge_id: str | None = None
    elapsed_ms: int | None = None
    verified_by: str | None = None
    hold_reason: str | None = None  # why it is (or was) held for review
    # A staff review is a SCORE item of its own (an INSERT the stream
    # processes like any submission) naming the held one it decides.
    review_of: str | None = None
    review: Review | None = None
    reviewed_by: str | None = None
    review_note: str | None = None
    reviewed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """One row of a leaderboard, wherever it was read from (Redis or the
    DynamoDB index)."""

    rank: int
    player_id: str
    player_name: str
    total: int

    def as_dict(self) -> dict:
        """The API's and the websocket's shape of an entry."""
        return {"rank": self.rank, "player_id": self.player_id, "player": self.player_name, "total": self.total}


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


def challenge_submission_id(challenge_id: str) -> str:
    """The one submission a challenge can make: a second answer to it targets
    the same SCORE item, which the conditional put refuses."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"challenge\n{challenge_id}"))


def review_id(submission_id: str) -> str:
    """The one review a held submission can have: of two staff deciding at
    once (or a double click), one conditional put wins."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"review\n{submission_id}"))


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
    # Held for review (id -> reason), as ``rejected`` is: the decision stands
    # until the SCORE item shows it.
    held: dict[str, str] = field(default_factory=dict)
    # When the player's latest completions were played (epoch ms, oldest
    # first, at most the burst limit of them): what the burst rule reads.
    recent: list[int] = field(default_factory=list)


# The leaderboard windows: all time, the ISO week, the day (UTC). Every other
# module imports this one definition.
WINDOWS = ("all", "week", "day")

# Widths of the rank key's two parts: a total, and the inverted moment it was
# reached (epoch ms, good until the year 2286).
_TOTAL_DIGITS = 15
_MOMENT_DIGITS = 13


def rank_key(*, total: int, reached_at_ms: int) -> str:
    """A string that sorts players as a leaderboard does: a higher total
    first and, on a tie, whoever reached it first. Read in descending order
    (the moment is inverted). The DynamoDB index (GSI1SK) and the Redis
    boards (member names) both sort by it."""
    return f"{total:0{_TOTAL_DIGITS}d}#{10**_MOMENT_DIGITS - reached_at_ms:0{_MOMENT_DIGITS}d}"


def rank_member(*, total: int, reached_at_ms: int, player_id: str) -> str:
    """A Redis board member: the rank key, then the player it ranks."""
    return f"{rank_key(total=total, reached_at_ms=reached_at_ms)}|{player_id}"


def rank_member_parse(member: str) -> tuple[int, str]:
    """(total, player id) of a board member. The rank key holds no ``|``.
    Members written before it took its ``#`` (``<total>|<moment>|<player>``)
    still parse, so boards carry over an upgrade."""
    key, _, player_id = member.partition("|")
    if "#" not in key:
        player_id = player_id.partition("|")[2]
    return int(key[:_TOTAL_DIGITS]), player_id


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
    hold_reason: str | None = None


def decide(submission: Submission, points: int | None) -> Decision:
    """Applied with the task's points, or rejected when the task is gone."""
    if points is None:
        return Decision(submission, Status.REJECTED, error=f"Task {submission.task!r} no longer exists.")
    return Decision(submission, Status.APPLIED, points=points)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What was decided for one submission: applied with points, or rejected
    with an error."""

    status: Status
    points: int | None = None
    error: str | None = None
    hold_reason: str | None = None


def decision_standing(total: PlayerTotal | None, submission_id: str) -> Outcome | None:
    """The decision a TOTAL already holds for this submission, or None.

    A decision is committed by the version-checked TOTAL write that records
    it (in ``pending`` with its points, or in ``rejected`` with its error).
    Once there it stands, whoever processes the submission again: a replay,
    a second worker on the same records, or dead-lettering. They follow it
    instead of deciding again, so the SCORE item never disagrees with the
    total.
    """
    if total is None:
        return None
    if submission_id in total.pending:
        return Outcome(Status.APPLIED, points=total.pending[submission_id])
    if submission_id in total.rejected:
        return Outcome(Status.REJECTED, error=total.rejected[submission_id])
    if submission_id in total.held:
        return Outcome(Status.HELD, hold_reason=total.held[submission_id])
    return None


# --- quarantine --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldRules:
    """When a submission is held for review instead of counted.

    ``burst_count`` completions by one player within ``burst_window_ms``
    are allowed; one more is held. ``review_ms`` maps a task to its
    difficulty's review threshold: a verified completion faster than that
    (but past the hard floor the API enforces) is held.
    """

    burst_count: int
    burst_window_ms: int
    review_ms: dict[str, int] = field(default_factory=dict)


def hold_decide(submission: Submission, total: PlayerTotal, rules: HoldRules | None) -> str | None:
    """Why this submission is held for review, or None to count it.

    A pure function of the submission, the player's TOTAL (its ``recent``
    completions) and the rules, so that a replay decides the same way. A
    staff review is never held: it is the review.
    """
    if rules is None or submission.review_of is not None:
        return None
    played = _ms(submission.submitted_at)
    window = [t for t in total.recent if played - rules.burst_window_ms < t <= played]
    if len(window) >= rules.burst_count:
        return (f"burst: {len(window) + 1} completions within {rules.burst_window_ms / 1000:g} s "
                f"(more than {rules.burst_count})")
    floor = rules.review_ms.get(submission.task)
    if submission.elapsed_ms is not None and floor and submission.elapsed_ms < floor:
        return f"fast: answered in {submission.elapsed_ms / 1000:.1f} s, under the review time of {floor / 1000:g} s"
    return None


def _recent_with(recent: list[int], played_ms: int, rules: HoldRules) -> list[int]:
    """``recent`` with one more completion, keeping the newest the burst rule can need."""
    return sorted([*recent, played_ms])[-rules.burst_count:]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fold_rejection(current: PlayerTotal | None, *, player_id: str, player_name: str, submission_id: str,
                   error: str) -> tuple[PlayerTotal | None, Outcome]:
    """Dead-lettering's decision for one submission: the one that stands, if
    any (nothing to write), else a rejection recorded in a new TOTAL.

    Works from ids, not a parsed Submission: a record is dead-lettered
    because something about it failed, possibly its item itself.
    """
    standing = decision_standing(current, submission_id)
    if standing is not None:
        return None, standing
    base = current or PlayerTotal(player_id=player_id, player_name=player_name, on_leaderboard=False)
    new = replace(base, version=base.version + 1, rejected={**base.rejected, submission_id: error})
    return new, Outcome(Status.REJECTED, error=error)


def total_expected(*, applied_points: int, total: PlayerTotal | None, pending_ids: set[str]) -> int:
    """What a player's total should be: the points of their applied SCORE
    items, plus those the TOTAL holds in ``pending`` for submissions whose
    SCORE item is still pending (counted, outcome not written yet: not
    drift). ``rebuild_totals`` reports a TOTAL that differs."""
    held = sum(points for sub_id, points in total.pending.items() if sub_id in pending_ids) if total else 0
    return applied_points + held


@dataclass(frozen=True, slots=True)
class TotalChange:
    """What one batch does to one player's total."""

    new_total: PlayerTotal
    applied: list[Decision]  # decisions whose points are in new_total
    rejected: list[Decision]  # decisions recorded as rejected in new_total
    added: int  # points added by this batch (0 on a pure replay)
    held: list[Decision] = field(default_factory=list)  # recorded as held for review


def fold_player(
    current: PlayerTotal,
    *,
    fresh: list[Decision],
    settled_ids: set[str],
    rules: HoldRules | None = None,
) -> TotalChange:
    """Fold a batch's decisions for one player into one new TOTAL.

    ``fresh`` are decisions for submissions whose SCORE item is still
    pending. Those already in ``current.pending``, ``current.rejected`` or
    ``current.held`` were decided by an earlier attempt (one that crashed
    before writing outcomes, or another worker on the same records): that
    decision stands, with the points it was added with, and nothing is
    added again. A new one that would apply is first put to the hold
    ``rules`` (``hold_decide``), in batch order. ``settled_ids`` are
    submissions whose SCORE item already shows an outcome; they leave the
    maps.
    """
    # Copies, which the loop extends: what stands is read from them.
    kept = replace(current, pending={k: v for k, v in current.pending.items() if k not in settled_ids},
                   rejected={k: v for k, v in current.rejected.items() if k not in settled_ids},
                   held={k: v for k, v in current.held.items() if k not in settled_ids})
    pending, rejected, held = kept.pending, kept.rejected, kept.held
    windows = dict(current.windows)
    applied: list[Decision] = []
    rejections: list[Decision] = []
    holds: list[Decision] = []
    by_status = {Status.APPLIED: applied, Status.REJECTED: rejections, Status.HELD: holds}
    added = 0
    reached = current.reached_at_ms
    for decision in fresh:
        sub_id = decision.submission.id
        standing = decision_standing(kept, sub_id)
        if standing is not None:
            by_status[standing.status].append(Decision(decision.submission, standing.status, points=standing.points,
                                                       error=standing.error, hold_reason=standing.hold_reason))
            continue
        if decision.status is not Status.APPLIED:
            rejected[sub_id] = decision.error or "Rejected."
            rejections.append(decision)
            continue
        reason = hold_decide(decision.submission, kept, rules)
        if rules is not None and decision.submission.review_of is None:
            kept.recent = _recent_with(kept.recent, _ms(decision.submission.submitted_at), rules)
        if reason is not None:
            held[sub_id] = reason
            holds.append(Decision(decision.submission, Status.HELD, hold_reason=reason))
            continue
        pending[sub_id] = decision.points
        added += decision.points
        applied.append(decision)
        reached = max(reached, _ms(decision.submission.submitted_at))
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
        held=held,
        recent=kept.recent,
    )
    return TotalChange(new_total=new_total, applied=applied, rejected=rejections, added=added, held=holds)
