"""Rules changes: a difficulty's points, or a task's difficulty, versioned.

Plan, preview, apply:

- ``plan_points`` / ``plan_move`` check a change and say what it does: the
  points each affected task earns after it (``Plan.rescore``).
- ``rules_preview`` shows what a retroactive change would do, from the
  TOTAL items alone (``domain.rescore_preview``: O(players)). It writes
  nothing.
- ``rules_change_apply`` makes the change: the catalog's new points and its
  ``RulesChange`` row in one transaction, whose id is the new rules
  version. A forward change ends there: batches that read the catalog after
  it score with the new points and record the new version. A retroactive
  one then writes one adjustment per affected player
  (``rules_change_adjust``): a SCORE item, an INSERT on the stream, which the
  stream processor folds into the player's TOTAL exactly once, as it does a
  submission (docs/consumer.md). Writing them again writes nothing: each
  adjustment's id derives from the change and the player.
- ``adjustments_missed_write`` is the stream processor's part: a batch that
  read the catalog before a retroactive change, and counted a player's
  first game of a task it re-scores after its scan passed them, writes that
  player's adjustment itself.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.db.models import F, Max, Subquery
from django.utils import timezone
from tqdm import tqdm

from scoring import store
from scoring.domain import (
    Decision,
    PlayerTotal,
    RescorePreview,
    Status,
    Submission,
    adjustment_id,
    rescore_delta,
    rescore_missed,
    rescore_preview,
    retry_id,
)
from scoring.models import MAX_POINTS, Difficulty, RulesChange, Task, rules_lock

Mode = RulesChange.Mode

logger = logging.getLogger(__name__)


class RulesChangeInvalid(ValueError):
    """The change names nothing, changes nothing, or changed meanwhile."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A rules change not made yet."""

    subject: str  # "Hard", "Division drill"
    change: str  # "50 → 60", "Medium → Hard (25 → 50)"
    before: dict
    after: dict
    rescore: dict[str, int] = field(default_factory=dict)  # task slug -> points after
    difficulty: Difficulty | None = None  # whose points change
    points: int | None = None
    task: Task | None = None  # which task moves
    move_to: Difficulty | None = None

    def summary_for(self, mode: str) -> str:
        """In words: "Hard re-scored 50 → 60", or "Hard 50 → 60 from now on"."""
        if mode == Mode.RETROACTIVE:
            return f"{self.subject} re-scored {self.change}"
        return f"{self.subject} {self.change} from now on"


def _difficulty_named(name: str) -> Difficulty:
    found = Difficulty.objects.filter(name__iexact=name).first()
    if found is None:
        known = ", ".join(Difficulty.objects.values_list("name", flat=True)) or "none"
        raise RulesChangeInvalid(f"No difficulty named {name!r} (known: {known}).")
    return found


def plan_points(*, difficulty_name: str, points: int) -> Plan:
    """A difficulty's points become ``points``: every task of it is affected."""
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
        raise RulesChangeInvalid(f"Points must be a positive whole number up to {MAX_POINTS:,}, not {points!r}.")
    difficulty = _difficulty_named(difficulty_name)
    if difficulty.points == points:
        raise RulesChangeInvalid(f"{difficulty.name} is already worth {points} points: nothing to change.")
    slugs = Task.objects.filter(difficulty=difficulty).values_list("slug", flat=True)
    return Plan(subject=difficulty.name, change=f"{difficulty.points} → {points}", before={"points": difficulty.points},
                after={"points": points}, rescore={slug: points for slug in slugs}, difficulty=difficulty,
                points=points)


def plan_move(*, task_slug: str, difficulty_name: str) -> Plan:
    """A task moves to another difficulty, and earns its points."""
    task = Task.objects.select_related("difficulty").filter(slug=task_slug).first()
    if task is None:
        raise RulesChangeInvalid(f"No task with slug {task_slug!r}.")
    target = _difficulty_named(difficulty_name)
    if target.pk == task.difficulty_id:
        raise RulesChangeInvalid(f"{task.title} is already {target.name}: nothing to change.")
    old = task.difficulty
    return Plan(subject=task.title, change=f"{old.name} → {target.name} ({old.points} → {target.points})",
                before={"difficulty": old.name, "points": old.points},
                after={"difficulty": target.name, "points": target.points},
                rescore={task.slug: target.points}, task=task, move_to=target)


def rules_preview(*, plan: Plan, totals: Iterable[PlayerTotal] | None = None, progress: bool = False,
                  top: int = 20) -> RescorePreview:
    """What applying ``plan`` retroactively would do. Reads TOTAL items only."""
    if totals is None:
        totals = tqdm(store.totals_scan(), unit="player", desc="reading totals", disable=not progress)
    return rescore_preview(totals, rescore=plan.rescore, top=top)


def rules_version() -> int:
    """The current rules version: the latest change's id, 0 before any."""
    return RulesChange.objects.aggregate(v=Max("id"))["v"] or 0


def version_subquery() -> Subquery:
    """The current rules version, to read in the same query as the points
    it goes with (one statement sees one snapshot, on any database)."""
    return Subquery(RulesChange.objects.order_by("-id").values("id")[:1])


def rules_change_apply(*, plan: Plan, mode: str, reason: str, actor: str, progress: bool = False) -> RulesChange:
    """Make the change, as of now, and (retroactive) re-score the past.

    Raises RulesChangeInvalid if the rule changed since ``plan`` was made
    (preview again). Rules changes are serialized (every difficulty row is
    locked), so versions are in the order the changes took effect.
    """
    if mode not in Mode.values:
        raise RulesChangeInvalid(f"Mode must be one of {', '.join(Mode.values)}, not {mode!r}.")
    # What it does, as previewed now: recorded with it (one more scan of the
    # TOTALs, so that a crash and a resume cannot make the record wrong).
    effect = rules_preview(plan=plan, progress=progress) if mode == Mode.RETROACTIVE else None
    with transaction.atomic():
        locked = rules_lock()
        if plan.difficulty is not None:
            difficulty = locked.get(plan.difficulty.pk)
            if difficulty is None or difficulty.points != plan.before["points"]:
                raise RulesChangeInvalid(f"{plan.difficulty.name} changed meanwhile: preview the change again.")
            difficulty.points = plan.points
            difficulty.rules_change_recorded = True
            difficulty.save(update_fields=["points"])
        else:
            task = Task.objects.select_for_update().filter(pk=plan.task.pk).first()
            if task is None or task.difficulty.name != plan.before["difficulty"] or plan.move_to.pk not in locked:
                raise RulesChangeInvalid(f"{plan.task.title} changed meanwhile: preview the change again.")
            task.difficulty = plan.move_to
            task.rules_change_recorded = True
            task.save(update_fields=["difficulty"])
        change = RulesChange.objects.create(
            created_by=actor, reason=reason, mode=mode, difficulty=plan.difficulty, task=plan.task,
            summary=plan.summary_for(mode), before=plan.before, after=plan.after, rescore=plan.rescore,
            status=RulesChange.Status.APPLYING if mode == Mode.RETROACTIVE else RulesChange.Status.APPLIED,
            applied_at=None if mode == Mode.RETROACTIVE else timezone.now(),
            **({"players_affected": effect.players_affected, "submissions_affected": effect.submissions_affected,
                "points_delta": effect.points_delta} if effect else {}))
    if mode == Mode.RETROACTIVE:
        rules_change_adjust(change=change, progress=progress)
    return change


def rules_change_adjust(*, change: RulesChange, progress: bool = False) -> int:
    """Write the adjustments of a retroactive change: one for each player
    whose TOTAL still counts submissions the change re-scores. Returns how
    many were written now.

    Safe to run again, after a crash or on purpose: a player who has the
    adjustment is not written again (its id is the change's and the
    player's), and one whose TOTAL already folded it has nothing left to
    re-score. A player whose affected submission was counted after the scan
    passed them is re-scored when it is counted (``domain._rescored``), or,
    if they had no such count yet, by the adjustment the stream processor
    then writes itself (``adjustments_missed_write``).
    """
    if change.mode != Mode.RETROACTIVE:
        raise RulesChangeInvalid(f"Rules change #{change.pk} is {change.mode}: it re-scores nothing.")
    now = timezone.now()
    written = unsaved = 0
    # Consistent reads: a TOTAL written just before the scan reached it,
    # by a batch that read the rules before this change, must be seen as
    # written, or its counts of the old rules are missed.
    totals = tqdm(store.totals_scan(consistent=True), unit="player", desc=f"rules change #{change.pk}",
                  disable=not progress)
    for total in totals:
        if not rescore_delta(total, rules_change=change.pk, rescore=change.rescore).submissions:
            continue
        if _adjustment_write(change, total, now=now):
            written += 1
            unsaved += 1
        if unsaved == _COUNT_EVERY:  # so that a run killed mid-way has counted most of what it wrote
            RulesChange.objects.filter(pk=change.pk).update(adjustments_written=F("adjustments_written") + unsaved)
            unsaved = 0
    RulesChange.objects.filter(pk=change.pk).update(
        status=RulesChange.Status.APPLIED, applied_at=change.applied_at or now,
        adjustments_written=F("adjustments_written") + unsaved)
    change.refresh_from_db()
    return written


# How many adjustments a run writes between updates of its change's count.
_COUNT_EVERY = 50


def adjustments_missed_write(totals: dict[str, PlayerTotal], applied: list[Decision]) -> int:
    """Write the adjustments a stream batch's late decisions need: the
    stream processor calls it after writing the batch's TOTALs (``totals``,
    as written) and before their submissions' outcomes, so a batch replayed
    after a crash calls it again. Returns how many were written.

    A batch reads the rules when it starts. If a retroactive change commits
    meanwhile and its scan passes a player before the batch writes their
    TOTAL, a submission the batch scored with the old points is not
    re-scored by the scan: the player had no count of it then
    (``domain.rescore_missed``). The change is committed before its scan
    starts, and this reads the changes after the TOTALs are written, so of
    the scan and this, at least one sees the count. Writing an adjustment
    the scan also writes is refused (the same id): the player is adjusted
    once.
    """
    late = [d for d in applied if not d.submission.is_adjustment]
    if not late:
        return 0
    changes = RulesChange.objects.filter(mode=Mode.RETROACTIVE, pk__gt=min(d.rules_version for d in late))
    now = timezone.now()
    written = 0
    for change in changes.only("pk", "rescore", "summary", "reason").order_by("pk"):
        for player_id in rescore_missed(totals, late, rules_change=change.pk, rescore=change.rescore):
            if not _adjustment_write(change, totals[player_id], now=now):
                continue  # written already: by the scan, or by this batch before a crash
            # Counted as it is written: a crash between the two leaves this
            # one uncounted (the replay's write of it is refused).
            RulesChange.objects.filter(pk=change.pk).update(adjustments_written=F("adjustments_written") + 1)
            logger.info("Rules change #%d: wrote the adjustment of player %s, whose first count of a task it "
                        "re-scores came after its scan", change.pk, player_id)
            written += 1
    return written


def _adjustment_write(change: RulesChange, total: PlayerTotal, *, now) -> bool:
    """Write the change's adjustment for this player, or a retry of it if
    the one stored was dead-lettered. True if one was written now."""
    adjustment = Submission(
        id=adjustment_id(rules_change=change.pk, player_id=total.player_id), player_id=total.player_id,
        player_name=total.player_name, task="", submitted_at=now, rules_change=change.pk,
        rescore=dict(change.rescore), summary=change.summary, reason=change.reason or None)
    return store.adjustment_put(adjustment=adjustment) or _retry_if_rejected(adjustment)


# A bound on how often one player's adjustment is retried after it was
# dead-lettered: each run of rules_change_adjust retries it once, and so
# does a stream batch that writes the player's missed adjustment.
MAX_ADJUSTMENT_RETRIES = 20


def _retry_if_rejected(adjustment: Submission) -> bool:
    """Write a retry of the player's adjustment if the one stored was
    rejected (dead-lettered: its record could not be processed, e.g. it
    grew too old in the stream), as staff retry a rejected submission. Its
    id derives from the rejected one's, so of two runs one writes it. Safe:
    a rejected adjustment moved no count, and the retry re-scores from the
    counts. True if one was written."""
    current = store.score_get(submission_id=adjustment.id)
    for _ in range(MAX_ADJUSTMENT_RETRIES):
        if current is None or current.status is not Status.REJECTED:
            return False
        retry = replace(adjustment, id=retry_id(current.id), retry_of=current.id)
        if store.adjustment_put(adjustment=retry):
            return True
        current = store.score_get(submission_id=retry.id)
    return False
