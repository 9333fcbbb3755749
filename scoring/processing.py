"""Processing a batch of stream records: shared by `consume_scores` and Lambda.

The effect on totals is exactly once although delivery is at least once:

1. Read the SCORE items of the batch. One that already shows an outcome was
   settled by an earlier attempt: skip it.
2. Decide each pending submission: applied with its task's points, or
   rejected. A staff review decides the held submission it names. Before
   a submission counts, the hold rules may hold it for review
   (``domain.hold_decide``, in the fold of step 3).
3. Per player, fold the batch into one new TOTAL item and write it with a
   version condition. The TOTAL's ``pending`` map records which submissions
   its total includes, with their points, until their SCORE items show it.
   This write is the commit point.
4. Write any adjustment a retroactive rules change made meanwhile still
   owes the batch's players (``adjustments_missed``; docs/consumer.md).
5. Tell ``on_commit`` (live leaderboards), publish the batch's domain
   events, then write the outcomes onto the SCORE items (BatchWriteItem).

A crash after 3 and before the outcomes are written leaves ids in ``pending``; the replay finds them
there, does not add them again, and writes their outcomes with the points
already counted. docs/consumer.md has the full argument. No step uses a
transaction: each costs O(1) in the table's size.
"""

import functools
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings

from scoring import store
from scoring.domain import (
    Decision,
    HoldRules,
    PlayerTotal,
    Review,
    Status,
    Submission,
    decide,
    fold_player,
    listed_ids,
    utcnow,
)

logger = logging.getLogger(__name__)

# How often a batch's keep_alive is called while its TOTALs are written: well
# inside a lease's renew interval (a third of STREAM_LEASE_SECONDS).
KEEP_ALIVE_SECONDS = 1.0
# Outcomes written between two keep_alive calls (40 BatchWriteItem calls).
OUTCOMES_PER_STEP = 1000


class PoisonRecord(Exception):
    """A record that can never be processed: not a SCORE insert we understand."""


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """ScoreApplied, ScoreRejected, ScoreHeld or ScoreAdjusted (a rules
    change's adjustment: ``points`` is its delta), for EventBridge and
    browsers. A review's event is about the submission it decided."""

    type: str
    submission_id: str
    player_id: str
    player_name: str
    task: str
    points: int | None = None
    total: int | None = None
    error: str | None = None
    submitted_at: str | None = None
    processed_at: str | None = None


@dataclass(slots=True)
class BatchResult:
    applied: list[Decision] = field(default_factory=list)
    rejected: list[Decision] = field(default_factory=list)
    held: list[Decision] = field(default_factory=list)
    skipped: int = 0
    totals: dict[str, PlayerTotal] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    # Player -> all-time rank after this batch, as ``on_commit`` found it on
    # the boards (it may fill this in): recorded on the applied outcomes.
    ranks: dict[str, int] = field(default_factory=dict)


class TotalsCache:
    """The TOTAL items this process wrote last, by player, so that a batch
    reads from DynamoDB only the players it does not hold (``records_process``).

    Exact without trusting it: every TOTAL write is conditioned on the
    version it folded from, so an entry that went stale (another worker
    wrote that TOTAL, or ``rebuild_totals --fix``) costs one failed put and
    a re-read, never a wrong total. Versions only grow and TOTAL items are
    never deleted, so a stale entry cannot pass the check by chance. Holds
    at most ``max_size`` players, dropping the least recently used.
    """

    def __init__(self, max_size: int):
        self.max_size = max_size
        self._totals: OrderedDict[str, PlayerTotal] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._totals)

    def get_many(self, player_ids: list[str]) -> dict[str, PlayerTotal]:
        found = {}
        for player_id in player_ids:
            total = self._totals.get(player_id)
            if total is not None:
                self._totals.move_to_end(player_id)
                found[player_id] = total
        self.hits += len(found)
        self.misses += len(player_ids) - len(found)
        return found

    def put(self, total: PlayerTotal) -> None:
        self._totals[total.player_id] = total
        self._totals.move_to_end(total.player_id)
        while len(self._totals) > self.max_size:
            self._totals.popitem(last=False)

    def discard(self, player_id: str) -> None:
        self._totals.pop(player_id, None)

    def clear(self) -> None:
        self._totals.clear()


def submission_from_record(record: dict) -> Submission:
    """The submission in a stream record's NewImage, or PoisonRecord."""
    try:
        image = record["dynamodb"]["NewImage"]
        return store.submission_from_item(image)
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonRecord(f"record {record.get('dynamodb', {}).get('SequenceNumber')}: {exc!r}") from exc


def records_process(
    records: Iterable[dict],
    *,
    points_for: Callable[[str], int | None],
    rules_version: int = 0,
    hold_rules: HoldRules | None = None,
    publish: Callable[[list[DomainEvent]], None] | None = None,
    on_commit: Callable[["BatchResult"], None] | None = None,
    now: Callable[[], datetime] = utcnow,
    known_totals: TotalsCache | None = None,
    keep_alive: Callable[[], None] | None = None,
    adjustments_missed: Callable[[dict[str, PlayerTotal], list[Decision]], object] | None = None,
) -> BatchResult:
    """Apply a batch of SCORE INSERT records exactly once. Idempotent.

    ``points_for(task_slug)`` gives a task's points now, or None if the task
    no longer exists; ``rules_version`` is the rules version they come from
    (the latest rules change's id, read with them), which every outcome
    records. A rules change's adjustment is folded like a submission.
    ``hold_rules`` (None: off) may hold a submission for review instead of
    counting it. ``publish`` receives the domain events of this batch, after
    every write has succeeded. ``known_totals``, if given, supplies the
    TOTALs it holds instead of reading them, and keeps the ones written.
    ``keep_alive`` is called between the steps of a long batch, and every
    KEEP_ALIVE_SECONDS while its TOTALs are written: the worker renews its
    leases there, and raises to give the batch up (after the writes in
    flight have finished). ``adjustments_missed(totals, applied)``, if given,
    is called once the TOTALs are written, before any outcome: it writes the
    adjustments a retroactive rules change made during the batch still owes
    its players (``rules.adjustments_missed_write``); a replay calls it again.
    """
    submissions = [submission_from_record(r) for r in records]
    result = BatchResult()
    if not submissions:
        return result
    try:
        return _records_process(submissions, result, points_for, rules_version, hold_rules, publish, on_commit,
                                now, known_totals, keep_alive or _nothing, adjustments_missed)
    except BaseException:
        # Entries of players whose write failed may be stale: harmless (see
        # TotalsCache), but the retry would pay a failed put for each.
        if known_totals is not None:
            known_totals.clear()
        raise


def _records_process(submissions: list[Submission], result: BatchResult, points_for, rules_version: int,
                     hold_rules: HoldRules | None, publish, on_commit, now: Callable[[], datetime],
                     known_totals: TotalsCache | None, keep_alive: Callable[[], None],
                     adjustments_missed) -> BatchResult:
    # The TOTALs before the SCOREs: a submission that another worker applied
    # and settled before these TOTALs were written then shows as settled
    # (see _still_pending). A TOTAL this process wrote last counts as read
    # when it was written: if it changed since, its write below fails the
    # version check and re-reads it, then its SCOREs.
    player_ids = list(dict.fromkeys(s.player_id for s in submissions))
    totals = known_totals.get_many(player_ids) if known_totals is not None else {}
    unknown = [p for p in player_ids if p not in totals]
    if unknown:
        totals.update(store.totals_get_many(player_ids=unknown))
    # The statuses of the batch's SCOREs, and of the ids its TOTALs still
    # hold from earlier batches (store.scores_settled): one BatchGetItem for the
    # whole batch, not one more per player, of two attributes an item (the
    # records carry the rest: a SCORE item changes only when it is settled).
    # Reviews need the whole submission they decide.
    batch_ids = {s.id for s in submissions}
    earlier = [i for t in totals.values() for i in listed_ids(t, besides=batch_ids)]
    statuses = store.scores_status_many(submission_ids=[s.id for s in submissions] + earlier)
    review_of = [s.review_of for s in submissions if s.review_of]
    originals = store.scores_get_many(submission_ids=review_of) if review_of else {}
    pending = []
    for submission in submissions:
        if statuses.get(submission.id) is not Status.PENDING:
            result.skipped += 1  # settled by an earlier attempt, or deleted
        else:
            pending.append(submission)
    by_player: dict[str, list[Decision]] = defaultdict(list)
    for submission in pending:
        by_player[submission.player_id].append(_decide(submission, originals, points_for, rules_version))
    keep_alive()

    processed_at = now()
    outcomes: list[Submission] = []

    def commit(player_id: str):
        return _apply_to_total(player_id, by_player[player_id], totals.get(player_id), hold_rules, statuses=statuses)

    # Each player's TOTAL is its own read-fold-write, on its own key: they
    # are written side by side (STREAM_TOTAL_WRITERS at once), each
    # waiting on DynamoDB while the others are sent. All of them have
    # finished before the batch goes on, or fails with the first error: no
    # write outlives its batch. Results are taken in the batch's order.
    players = list(by_player)
    if len(players) < 2:
        committed = [commit(p) for p in players]
    else:
        futures = [_writers().submit(commit, p) for p in players]
        try:
            while wait(futures, timeout=KEEP_ALIVE_SECONDS).not_done:
                keep_alive()
        finally:
            wait(futures)  # given up or not, no write outlives its batch
        committed = [f.result() for f in futures]
    for player_id, (applied, rejected, held, total) in zip(players, committed, strict=True):
        if known_totals is not None and total is not None:  # what was written
            known_totals.put(total)
        elif known_totals is not None:  # nothing was, after a re-read
            known_totals.discard(player_id)
        result.applied += applied
        result.rejected += rejected
        result.held += held
        if applied:  # a batch of rejections or holds changes no board
            result.totals[player_id] = total
    # Before the outcomes: until they are written, a crash replays the batch,
    # and its applied decisions (standing in the TOTALs) come here again.
    if adjustments_missed is not None and result.applied:
        adjustments_missed(result.totals, result.applied)
    if on_commit is not None and (result.applied or result.rejected or result.held):
        on_commit(result)
    keep_alive()
    for decision in result.applied + result.rejected + result.held:
        outcomes.append(
            replace(
                decision.submission,
                status=decision.status,
                points=decision.points,
                error=decision.error,
                hold_reason=decision.hold_reason or decision.submission.hold_reason,
                processed_at=processed_at,
                rules_version=decision.rules_version if decision.status is Status.APPLIED else None,
                rank=result.ranks.get(decision.submission.player_id) if decision.status is Status.APPLIED else None,
            )
        )
    reviewed = [r for r in (_reviewed(o, originals.get(o.review_of)) for o in outcomes if o.review_of) if r]
    # Publish before writing outcomes: if publishing fails, the SCORE items
    # stay pending, the batch is replayed, and the events are sent again
    # (at least once; the totals are safe either way, step 3 committed them).
    result.events = _events(outcomes, result.totals)
    if publish is not None and result.events:
        publish(result.events)
    # In steps, the leases kept between them: a large batch's outcomes are
    # hundreds of calls. Each step writes its reviews' held submissions
    # with them, first, as one call would.
    for start in range(0, len(outcomes), OUTCOMES_PER_STEP):
        keep_alive()
        step = outcomes[start:start + OUTCOMES_PER_STEP]
        decided = {o.review_of for o in step if o.review_of}
        store.scores_put_outcomes(submissions=step, reviewed=[r for r in reviewed if r.id in decided])
    return result


def _nothing() -> None:
    pass


@functools.cache
def _writers() -> ThreadPoolExecutor:
    """The threads that write a batch's TOTALs (one pool per process)."""
    return ThreadPoolExecutor(max_workers=settings.STREAM_TOTAL_WRITERS, thread_name_prefix="total-writer")


def _decide(submission: Submission, originals: dict[str, Submission], points_for, rules_version: int) -> Decision:
    """A submission's decision before the hold rules; a review's is the
    decision on the held submission it names (in ``originals``)."""
    if submission.is_adjustment:
        return decide(submission, None)
    if submission.review_of is None:
        return decide(submission, points_for(submission.task), rules_version)
    original = originals.get(submission.review_of)
    if original is None or _reviewed(submission, original) is None:
        return Decision(submission, Status.REJECTED, error="The reviewed submission is not held: nothing to decide.")
    if submission.review is Review.APPROVE:
        return decide(submission, points_for(submission.task), rules_version)
    note = f": {submission.review_note}" if submission.review_note else "."
    return Decision(submission, Status.REJECTED, error=f"Rejected in review{note}")


def _reviewed(review: Submission, original: Submission | None) -> Submission | None:
    """The held submission as ``review`` decides it (with the review's
    outcome, if it has one yet), or None if it is not this review's to
    decide: not held, and not already decided by it."""
    if original is None:
        return None
    if original.status is not Status.HELD and original.reviewed_at != review.reviewed_at:
        return None
    return replace(original, status=review.status if review.status is not Status.PENDING else original.status,
                   points=review.points, error=review.error, processed_at=review.processed_at,
                   rules_version=review.rules_version, rank=review.rank,
                   review=review.review, reviewed_by=review.reviewed_by, review_note=review.review_note,
                   reviewed_at=review.reviewed_at)


def _apply_to_total(
    player_id: str, decisions: list[Decision], current: PlayerTotal | None, rules: HoldRules | None, *,
    statuses: dict[str, Status],
) -> tuple[list[Decision], list[Decision], list[Decision], PlayerTotal | None]:
    """Fold one player's decisions into their TOTAL, retrying lost races.

    ``current`` is the TOTAL read for the whole batch, before its SCOREs'
    ``statuses`` (which also hold those of the earlier ids it lists); it
    is read again only after losing a race, and then the SCOREs it lists
    are read again after it. Returns the decisions applied,
    rejected and held, as the TOTAL written records them, and that TOTAL. Every
    decision, a rejection too, is committed by that version-checked write.
    """

    def change(current: PlayerTotal | None, retrying: bool):
        nonlocal decisions
        if retrying:
            decisions = _still_pending(decisions, current)
            if not decisions:
                return None, ([], [], [], None)
        if current is None:
            current = PlayerTotal(player_id=player_id, player_name=decisions[-1].submission.player_name,
                                  on_leaderboard=False)
        settled = store.scores_settled(total=current, besides={d.submission.id for d in decisions},
                                       statuses=None if retrying else statuses)
        folded = fold_player(current, fresh=decisions, settled_ids=settled, rules=rules)
        return folded.new_total, (folded.applied, folded.rejected, folded.held, folded.new_total)

    return store.total_change(player_id=player_id, change=change, current=current)


def _still_pending(decisions: list[Decision], current: PlayerTotal | None) -> list[Decision]:
    """The decisions whose SCORE item is still pending, read after ``current``.

    Two workers can hold the same records at once (the old owner of a lease,
    paused past its expiry, and the new one). If the other one applied a
    submission and a later batch of it already dropped the id from the
    TOTAL's ``pending`` map, the TOTAL alone cannot tell; its SCORE item
    can, because ids leave ``pending`` only after their outcome is written.
    Reading the SCORE after the TOTAL makes that order hold for us too.
    """
    decided = {**current.pending, **current.rejected, **current.held} if current else {}
    check = [d.submission.id for d in decisions if d.submission.id not in decided]
    if not check:
        return decisions
    statuses = store.scores_status_many(submission_ids=check)
    done = {i for i in check if statuses.get(i) is not Status.PENDING}
    return [d for d in decisions if d.submission.id not in done]


_EVENT_TYPES = {Status.APPLIED: "ScoreApplied", Status.REJECTED: "ScoreRejected", Status.HELD: "ScoreHeld"}


def _events(outcomes: list[Submission], totals: dict[str, PlayerTotal]) -> list[DomainEvent]:
    events = []
    for s in outcomes:
        total = totals.get(s.player_id)
        events.append(
            DomainEvent(
                type="ScoreAdjusted" if s.is_adjustment else _EVENT_TYPES[s.status],
                submission_id=s.review_of or s.id,
                player_id=s.player_id,
                player_name=s.player_name,
                task=s.task,
                points=s.points,
                total=total.total if total and s.status is Status.APPLIED else None,
                error=s.error,
                submitted_at=s.submitted_at.isoformat(),
                processed_at=s.processed_at.isoformat() if s.processed_at else None,
            )
        )
    return events
