"""Pure scoring rules and value types. Standard library only.

Nothing here knows about Django, boto3 or Channels, so the rules can be read
and tested on their own.
"""

import re
import uuid
from collections.abc import Iterable, Set
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
    retried_by: str | None = None  # the staff member who retried it
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
    # The rules version (a rules change's id; 0 before any change) its
    # outcome was scored under.
    rules_version: int | None = None
    # An adjustment is a SCORE item too (an INSERT the stream processes like
    # any submission): a retroactive rules change re-scoring one player's
    # past. ``rescore`` maps each task it re-scores to the points its
    # applied submissions now earn; ``points`` is the delta, decided when the
    # stream folds it into the TOTAL (``rescore_delta``). ``summary`` says it
    # in words ("Hard re-scored 50 → 60"), ``reason`` is the admin's.
    rules_change: int | None = None
    rescore: dict[str, int] | None = None
    summary: str | None = None
    reason: str | None = None
    # The player's all-time rank just after this outcome counted, when the
    # boards could say (for the ledger's rank-over-time chart).
    rank: int | None = None

    @property
    def is_adjustment(self) -> bool:
        return self.rules_change is not None


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


def adjustment_id(*, rules_change: int, player_id: str) -> str:
    """The one adjustment a rules change can make to a player: applying the
    change again targets the same SCORE item, which the conditional put
    refuses."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"adjustment\n{rules_change}\n{player_id}"))


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
    # Applied submissions per (task, points they count), all time
    # (``"<task>|<points>"``) and per kept window (``"<window>|<task>|<points>"``):
    # what a retroactive rules change re-scores, without reading a single
    # SCORE item (``rescore_delta``). Invariant: total = sum of points x count
    # over the all-time keys.
    counts: dict[str, int] = field(default_factory=dict)
    # task -> [rules change, points]: the latest retroactive change applied
    # to this player's submissions of the task. A submission decided under
    # an older version and counted after it is scored as that change says.
    rescored: dict[str, list[int]] = field(default_factory=dict)
    # submission id -> the rules version its ``pending`` points were scored
    # under, for the outcome a replay writes.
    versions: dict[str, int] = field(default_factory=dict)


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
    rules_version: int = 0


def decide(submission: Submission, points: int | None, rules_version: int = 0) -> Decision:
    """Applied with the task's points under the rules version they come
    from, or rejected when the task is gone. An adjustment applies: its
    points (a delta) are decided by the fold, from the TOTAL."""
    if submission.is_adjustment:
        return Decision(submission, Status.APPLIED, points=0, rules_version=submission.rules_change)
    if points is None:
        return Decision(submission, Status.REJECTED, error=f"Task {submission.task!r} no longer exists.",
                        rules_version=rules_version)
    return Decision(submission, Status.APPLIED, points=points, rules_version=rules_version)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What was decided for one submission: applied with points, or rejected
    with an error."""

    status: Status
    points: int | None = None
    error: str | None = None
    hold_reason: str | None = None
    rules_version: int = 0


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
        return Outcome(Status.APPLIED, points=total.pending[submission_id],
                       rules_version=total.versions.get(submission_id, 0))
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
    staff review is never held: it is the review; nor is the retry of a
    submission staff approved, which carries their approval.
    """
    if (rules is None or submission.review_of is not None or submission.is_adjustment
            or submission.review is Review.APPROVE):
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
                   error: str, settled_ids: Set[str] = frozenset()) -> tuple[PlayerTotal | None, Outcome]:
    """Dead-lettering's decision for one submission: the one that stands, if
    any (nothing to write), else a rejection recorded in a new TOTAL.

    Works from ids, not a parsed Submission: a record is dead-lettered
    because something about it failed, possibly its item itself. As a batch
    does (``fold_player``), the new TOTAL forgets the ids in ``settled_ids``
    (their SCORE items show their outcomes): dead letters one after another
    (a backlog past its maximum age) must not grow the item without end.
    """
    standing = decision_standing(current, submission_id)
    if standing is not None:
        return None, standing
    base = forget_settled(current or PlayerTotal(player_id=player_id, player_name=player_name,
                                                 on_leaderboard=False), settled_ids)
    new = replace(base, version=base.version + 1, rejected={**base.rejected, submission_id: error})
    return new, Outcome(Status.REJECTED, error=error)


def listed_ids(total: PlayerTotal, *, besides: Set[str] = frozenset()) -> list[str]:
    """The submissions a TOTAL lists as decided (``pending``, ``rejected``,
    ``held``), but for ``besides``."""
    return [i for i in (*total.pending, *total.rejected, *total.held) if i not in besides]


def forget_settled(total: PlayerTotal, settled_ids: Set[str]) -> PlayerTotal:
    """A copy of ``total`` whose maps no longer list ``settled_ids`` (their
    SCORE items show the outcomes), with maps of its own to extend."""
    pending = {k: v for k, v in total.pending.items() if k not in settled_ids}
    return replace(total, pending=pending,
                   rejected={k: v for k, v in total.rejected.items() if k not in settled_ids},
                   held={k: v for k, v in total.held.items() if k not in settled_ids},
                   versions={k: v for k, v in total.versions.items() if k in pending})


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
    kept = replace(forget_settled(current, settled_ids), windows=dict(current.windows),
                   counts=dict(current.counts), rescored=dict(current.rescored))
    pending, rejected, held, versions = kept.pending, kept.rejected, kept.held, kept.versions
    applied: list[Decision] = []
    rejections: list[Decision] = []
    holds: list[Decision] = []
    by_status = {Status.APPLIED: applied, Status.REJECTED: rejections, Status.HELD: holds}
    added = 0
    reached = current.reached_at_ms
    for decision in fresh:
        submission = decision.submission
        sub_id = submission.id
        standing = decision_standing(kept, sub_id)
        if standing is not None:
            by_status[standing.status].append(Decision(submission, standing.status, points=standing.points,
                                                       error=standing.error, hold_reason=standing.hold_reason,
                                                       rules_version=standing.rules_version))
            continue
        if decision.status is not Status.APPLIED:
            rejected[sub_id] = decision.error or "Rejected."
            rejections.append(decision)
            continue
        if submission.is_adjustment:
            rescore = rescore_delta(kept, rules_change=submission.rules_change, rescore=submission.rescore or {})
            kept.counts, kept.windows, kept.rescored = rescore.counts, rescore.windows, rescore.rescored
            pending[sub_id] = rescore.delta
            versions[sub_id] = submission.rules_change
            added += rescore.delta
            applied.append(replace(decision, points=rescore.delta))
            continue
        reason = hold_decide(submission, kept, rules)
        if rules is not None and submission.review_of is None:
            kept.recent = _recent_with(kept.recent, _ms(submission.submitted_at), rules)
        if reason is not None:
            held[sub_id] = reason
            holds.append(Decision(submission, Status.HELD, hold_reason=reason, rules_version=decision.rules_version))
            continue
        decision = _rescored(decision, kept.rescored)
        pending[sub_id] = decision.points
        if decision.rules_version:
            versions[sub_id] = decision.rules_version
        added += decision.points
        applied.append(decision)
        reached = max(reached, _ms(submission.submitted_at))
        # Windows count by when the task was played, not when it was scored.
        for window in (None, *window_keys(submission.submitted_at).values()):
            key = count_key(submission.task, decision.points, window, decision.rules_version)
            kept.counts[key] = kept.counts.get(key, 0) + 1
            if window is not None:
                kept.windows[window] = kept.windows.get(window, 0) + decision.points
    windows = _prune_windows(kept.windows)
    new_total = PlayerTotal(
        player_id=current.player_id,
        player_name=fresh[-1].submission.player_name if fresh else current.player_name,
        total=current.total + added,
        version=current.version + 1,
        pending=pending,
        reached_at_ms=reached,
        windows=windows,
        rejected=rejected,
        on_leaderboard=current.on_leaderboard or added > 0,
        held=held,
        recent=kept.recent,
        counts=_prune_counts(kept.counts, windows),
        rescored=kept.rescored,
        versions={k: v for k, v in versions.items() if k in pending},
    )
    return TotalChange(new_total=new_total, applied=applied, rejected=rejections, added=added, held=holds)


def _rescored(decision: Decision, rescored: dict[str, list[int]]) -> Decision:
    """A decision taken under rules older than a retroactive change this
    TOTAL already applied to its task scores as that change says: the change
    re-scored every submission of the task, and this one was counted after."""
    done = rescored.get(decision.submission.task)
    if done is None or done[0] <= decision.rules_version:
        return decision
    return replace(decision, points=done[1], rules_version=done[0])


# --- rules changes -------------------------------------------------------------


def count_key(task: str, points: int, window: str | None = None, version: int = 0) -> str:
    """A key of ``PlayerTotal.counts``: all time, or within a window, of the
    submissions of ``task`` counting ``points`` under rules ``version``
    (``@<version>`` after the points, left out for 0)."""
    key = f"{task}|{points}" if window is None else f"{window}|{task}|{points}"
    return f"{key}@{version}" if version else key


def count_key_split(key: str) -> tuple[str | None, str, int, int]:
    """(window or None for all time, task, points, rules version) of a
    counts key. Task slugs and window names hold no ``|`` or ``@``."""
    key, _, version = key.partition("@")
    *window, task, points = key.split("|")
    return (window[0] if window else None), task, int(points), int(version or 0)


def count_key_parse(key: str) -> tuple[str | None, str, int]:
    """(window or None for all time, task, points) of a counts key."""
    return count_key_split(key)[:3]


def _prune_counts(counts: dict[str, int], windows: dict[str, int]) -> dict[str, int]:
    """Counts of all time and of the windows still kept."""
    return {k: n for k, n in counts.items() if n and (count_key_parse(k)[0] in (None, *windows))}


@dataclass(frozen=True, slots=True)
class Rescore:
    """What a retroactive rules change does to one player's TOTAL."""

    delta: int  # all-time points added (negative: taken)
    submissions: int  # applied submissions whose points change
    counts: dict[str, int]
    windows: dict[str, int]
    rescored: dict[str, list[int]]


def rescore_delta(total: PlayerTotal, *, rules_change: int | float, rescore: dict[str, int]) -> Rescore:
    """Re-score the player's applied submissions of the tasks in ``rescore``
    (task -> points) that were scored under rules older than this change, to
    those points, from the TOTAL's counts alone.

    Counts carry the rules version they were scored under, so a change
    leaves alone what a later change scored: a later retroactive change's
    re-scoring, and submissions scored after a later forward change. So an
    adjustment applied twice adds nothing the second time, and two changes
    compose whatever order their adjustments arrive in. The preview calls it
    with ``rules_change=inf``: a change not made yet is newer than every one
    there is.
    """
    counts, windows, rescored = dict(total.counts), dict(total.windows), dict(total.rescored)
    version = 0 if rules_change == float("inf") else int(rules_change)
    delta = submissions = 0
    for task, after in rescore.items():
        done = rescored.get(task)
        if version and (done is None or done[0] < version):
            rescored[task] = [version, after]
        for key, n in total.counts.items():
            window, counted_task, before, scored_under = count_key_split(key)
            if counted_task != task or scored_under >= rules_change:
                continue
            del counts[key]
            moved = count_key(task, after, window, version)
            counts[moved] = counts.get(moved, 0) + n
            if before == after:
                continue
            if window is None:
                delta += n * (after - before)
                submissions += n
            else:
                windows[window] = windows.get(window, 0) + n * (after - before)
    return Rescore(delta, submissions, counts, windows, rescored)


def rescore_missed(totals: dict[str, PlayerTotal], applied: Iterable[Decision], *, rules_change: int,
                   rescore: dict[str, int]) -> list[str]:
    """The players whose adjustment for a retroactive change may be missing
    because of submissions a batch has just counted.

    A batch that read the rules before the change committed scores with the
    old points. If the change's scan of the TOTALs passed the player before
    the batch wrote their TOTAL, and the player had no count of the task
    then, the scan wrote them no adjustment, and nothing else re-scores the
    submission. These are the players with such a decision in ``applied``
    (a task the change re-scores, rules older than the change) whose TOTAL,
    as written (``totals``), still counts submissions the change re-scores.
    """
    players = {d.submission.player_id for d in applied
               if not d.submission.is_adjustment and d.rules_version < rules_change and d.submission.task in rescore}
    return sorted(p for p in players
                  if p in totals and rescore_delta(totals[p], rules_change=rules_change, rescore=rescore).submissions)


@dataclass(frozen=True, slots=True)
class RankMove:
    """One player in a preview: their total and all-time rank before and
    after a change (None: not on the board)."""

    player_id: str
    player_name: str
    total_before: int
    total_after: int
    rank_before: int | None
    rank_after: int | None

    @property
    def move(self) -> int:
        """Places gained (negative: lost); 0 when on no board either side."""
        if self.rank_before is None or self.rank_after is None:
            return 0
        return self.rank_before - self.rank_after

    def as_dict(self) -> dict:
        return {"player_id": self.player_id, "player": self.player_name, "total_before": self.total_before,
                "total_after": self.total_after, "delta": self.total_after - self.total_before,
                "rank_before": self.rank_before, "rank_after": self.rank_after, "move": self.move}


@dataclass(frozen=True, slots=True)
class RescorePreview:
    players: int  # TOTALs read
    players_affected: int
    submissions_affected: int
    points_delta: int
    top_before: list[RankMove]
    top_after: list[RankMove]
    moves: list[RankMove]  # the largest rank changes, largest first
    changed: dict[str, RankMove]  # every player whose total or rank changes

    def as_dict(self) -> dict:
        return {"players": self.players, "players_affected": self.players_affected,
                "submissions_affected": self.submissions_affected, "points_delta": self.points_delta,
                "top_before": [m.as_dict() for m in self.top_before],
                "top_after": [m.as_dict() for m in self.top_after],
                "moves": [m.as_dict() for m in self.moves]}


def rescore_preview(totals: Iterable[PlayerTotal], *, rescore: dict[str, int], top: int = 20,
                    moves: int = 20) -> RescorePreview:
    """What a retroactive change to ``rescore`` (task -> points) would do,
    from the TOTALs alone: O(players), never O(submissions). Ranks are the
    all-time board's, ordered as the Redis board orders its members
    (``rank_member``): the apply leaves each ``reached_at_ms`` as it is.
    """
    rows = []  # (member before, member after, total)
    affected = submissions = delta_sum = players = 0
    for total in totals:
        players += 1
        change = rescore_delta(total, rules_change=float("inf"), rescore=rescore)
        if change.submissions:
            affected += 1
            submissions += change.submissions
            delta_sum += change.delta
        if not total.on_leaderboard:
            continue
        after = total.total + change.delta

        def member(value: int, t: PlayerTotal = total) -> str | None:
            return rank_member(total=value, reached_at_ms=t.reached_at_ms, player_id=t.player_id) if value > 0 else None

        rows.append((member(total.total), member(after), total, after))
    rank_before = _ranks(r[0] for r in rows)
    rank_after = _ranks(r[1] for r in rows)
    all_moves = {}
    for before_m, after_m, total, after in rows:
        all_moves[total.player_id] = RankMove(total.player_id, total.player_name, total.total, after,
                                              rank_before.get(before_m), rank_after.get(after_m))
    changed = {p: m for p, m in all_moves.items() if m.total_before != m.total_after or m.move}
    by_rank = sorted((m for m in all_moves.values() if m.rank_before is not None), key=lambda m: m.rank_before)
    by_new_rank = sorted((m for m in all_moves.values() if m.rank_after is not None), key=lambda m: m.rank_after)
    largest = sorted((m for m in changed.values() if m.move), key=lambda m: (-abs(m.move), m.rank_after or 0))
    return RescorePreview(players=players, players_affected=affected, submissions_affected=submissions,
                          points_delta=delta_sum, top_before=by_rank[:top], top_after=by_new_rank[:top],
                          moves=largest[:moves], changed=changed)


def _ranks(members: Iterable[str | None]) -> dict[str, int]:
    """Board member -> rank (1 first), as Redis ranks members of one score:
    the greatest name first."""
    ordered = sorted((m for m in members if m is not None), reverse=True)
    return {m: i for i, m in enumerate(ordered, start=1)}
