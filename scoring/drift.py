"""Drift: TOTAL items that disagree with the SCORE items they sum.

The rule (``domain.total_expected``) is pure; this service reads the table
for it and, asked to, corrects the TOTALs. ``rebuild_totals`` is its command.
DynamoDB stays the source of truth: the SCORE items are the ledger.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from tqdm import tqdm

from scoring import store
from scoring.domain import PlayerTotal, Status, Submission, count_key, count_key_parse, total_expected, window_keys


@dataclass(frozen=True, slots=True)
class Drift:
    """A TOTAL that disagrees with its ledger: its total, or its counts
    (what a retroactive rules change re-scores from), or both."""

    player_id: str
    stored: int
    expected: int
    total: PlayerTotal | None  # the TOTAL as read; None: the player has none
    # The counts it should have, when they do not add up to its total
    # (a TOTAL written before counts existed); None when they do, or when
    # they cannot be rebuilt from the SCORE items (see counts_rebuilt).
    counts: dict[str, int] | None = None
    counts_drift: bool = False
    # For a missing TOTAL, what the new one starts from (see _Ledger).
    player_name: str = ""
    reached_at_ms: int = 0

    @property
    def total_drift(self) -> bool:
        return self.stored != self.expected


def counts_total(counts: dict[str, int]) -> int:
    """What a TOTAL's all-time counts add up to, in points."""
    total = 0
    for key, n in counts.items():
        window, _, points = count_key_parse(key)
        if window is None:
            total += points * n
    return total


@dataclass(slots=True)
class _Ledger:
    """One player's ledger as the scan finds it."""

    applied: int = 0
    counts: Counter = field(default_factory=Counter)
    adjusted: bool = False  # an adjustment moved counts: they cannot be rebuilt from SCORE points
    # For a TOTAL that is missing: the name the player's submissions carry,
    # and when their latest applied one was played (a tie on the board goes
    # to whoever got there first).
    player_name: str = ""
    reached_at_ms: int = 0


def drifts_find(*, progress: bool = False) -> list[Drift]:
    """Every player whose TOTAL differs from what their SCORE items give.
    Two full scans (consistent reads): an ops tool, never a hot path. Exact
    when nothing is being processed; beside a running consumer, a player
    whose batch lands between the two scans can seem to drift:
    ``drifts_confirmed`` tells those apart."""
    approx = store.table_item_count_approx()
    scores = tqdm(store.scores_scan(consistent=True), total=approx or None, unit="score", desc="scanning scores",
                  disable=not progress)
    return _drifts(scores, store.totals_scan(consistent=True))  # a generator: it scans once scores are read


def _drifts(scores: Iterable[Submission], totals: Iterable[PlayerTotal]) -> list[Drift]:
    """The drifts of these TOTALs (iterated after ``scores``, which must
    hold every SCORE item of their players: submissions, adjustments, and
    the reviews their ``pending`` names), and of the players with applied
    points in ``scores`` but no TOTAL at all."""
    ledgers: dict[str, _Ledger] = defaultdict(_Ledger)
    applied_ids: set[str] = set()
    pending_ids: set[str] = set()
    pending_reviews: dict[str, str] = {}  # review id -> the held submission it decides
    for submission in scores:
        if submission.review_of is not None:
            # A review's points are on the submission it approved, which
            # is written first: count them there, once.
            if submission.status is Status.PENDING:
                pending_reviews[submission.id] = submission.review_of
        elif submission.status is Status.APPLIED:
            ledger = ledgers[submission.player_id]
            ledger.applied += submission.points or 0
            applied_ids.add(submission.id)
            if submission.is_adjustment:
                ledger.adjusted = True
            else:
                ledger.player_name = submission.player_name
                ledger.reached_at_ms = max(ledger.reached_at_ms, int(submission.submitted_at.timestamp() * 1000))
                for window in (None, *window_keys(submission.submitted_at).values()):
                    ledger.counts[count_key(submission.task, submission.points or 0, window,
                                            submission.rules_version or 0)] += 1
        elif submission.status is Status.PENDING:
            pending_ids.add(submission.id)
    # A pending review counts through the TOTAL's ``pending`` until the
    # submission it approved shows the points.
    pending_ids |= {rid for rid, original in pending_reviews.items() if original not in applied_ids}
    drifts = []
    for total in totals:
        ledger = ledgers.pop(total.player_id, _Ledger())
        expected = total_expected(applied_points=ledger.applied, total=total, pending_ids=pending_ids)
        counts_off = counts_total(total.counts) != total.total
        if expected != total.total or counts_off:
            in_flight = any(i in pending_ids for i in total.pending)
            drifts.append(Drift(total.player_id, total.total, expected, total,
                                counts=None if in_flight else _counts_rebuilt(ledger, total),
                                counts_drift=counts_off))
    # Applied points but no TOTAL item at all.
    drifts += [Drift(player_id, 0, ledger.applied, None, counts=_counts_rebuilt(ledger, None),
                     player_name=ledger.player_name or player_id, reached_at_ms=ledger.reached_at_ms)
               for player_id, ledger in ledgers.items() if ledger.applied]
    return sorted(drifts, key=lambda d: d.player_id)


# Between two checks of one player: longer than the player index's lag.
RECHECK_PAUSE_SECONDS = 2.0


def drifts_confirmed(*, progress: bool = False, attempts: int = 5) -> tuple[list[Drift], list[str]]:
    """The drifts that stand, and the players that could not be checked
    (their TOTAL kept changing: run it again).

    One pass reads the SCORE items, then the TOTALs, so a submission made
    after the first scan and applied before the second is in its TOTAL but
    not in the ledger read: a drift that is not there, and ``--fix`` would
    take correctly applied points away. So a drift stands only if it is
    seen twice with nothing written in between:

    - two passes find it at the same TOTAL version and numbers (a batch
      landing between a pass's scans changes the version before the next);
    - or, for a player who played during the passes (a full pass takes
      minutes: an active player never holds still for two), two checks of
      that player alone (``drift_of``, each a moment long with the TOTAL's
      version unchanged throughout), RECHECK_PAUSE_SECONDS apart, find the
      same gap. The pause outlasts the player index's lag, the one read
      there that is not consistent.
    """
    first = drifts_find(progress=progress)
    if not first:
        return [], []
    second = drifts_find(progress=progress)
    seen_first = {_seen(d) for d in first}
    confirmed = [d for d in second if _seen(d) in seen_first]
    settled = {d.player_id for d in confirmed}
    moved = sorted({d.player_id for d in [*first, *second]} - settled)
    unchecked = []
    readings = {player_id: drift_of(player_id, attempts=attempts) for player_id in moved}
    if any(found is not None for found, _ in readings.values()):
        time.sleep(RECHECK_PAUSE_SECONDS)
    for player_id, (found, steady) in readings.items():
        if not steady:
            unchecked.append(player_id)
        elif found is not None:
            again, steady = drift_of(player_id, attempts=attempts)
            if steady and again is not None and _gap(again) == _gap(found):
                confirmed.append(again)
            elif steady and again is None:
                continue  # gone: the first reading missed an item the index had not shown yet
            else:
                unchecked.append(player_id)
    return sorted(confirmed, key=lambda d: d.player_id), unchecked


def drift_of(player_id: str, *, attempts: int = 5) -> tuple[Drift | None, bool]:
    """One player's drift (None: none), read while nothing changes their
    TOTAL: it, their SCORE items (from the player index, and the ids its
    ``pending`` names, which covers reviews and submissions too new for
    the index), then it again; and True if the two reads of the TOTAL had
    the same version, at one of ``attempts`` tries (else (None, False))."""
    for _ in range(attempts):
        before = store.totals_get_many(player_ids=[player_id]).get(player_id)
        ids = set(store.player_score_ids(player_id=player_id)) | set(before.pending if before else ())
        scores = store.scores_get_many(submission_ids=sorted(ids)).values()
        after = store.totals_get_many(player_ids=[player_id]).get(player_id)
        if (before and before.version) == (after and after.version):
            drifts = _drifts(scores, [after] if after else [])
            return (drifts[0] if drifts else None), True
    return None, False


def _seen(drift: Drift) -> tuple:
    return (drift.player_id, drift.total.version if drift.total else None, drift.stored, drift.expected,
            drift.counts_drift)


def _gap(drift: Drift) -> tuple:
    """What a drift is wrong by, whatever the TOTAL's version."""
    return drift.expected - drift.stored, drift.counts_drift


def _counts_rebuilt(ledger: _Ledger, total: PlayerTotal | None) -> dict[str, int] | None:
    """The counts a TOTAL should hold, from its applied SCORE items: each at
    the points and rules version it was applied with, in the windows the
    TOTAL keeps. Only while no adjustment re-scored them (the SCORE items
    keep their original points; the counts moved on): else None. The caller
    passes None too while a batch of the player's is in flight (its TOTAL
    counts what no SCORE item shows yet): run it again later."""
    if ledger.adjusted:
        return None
    kept = set(total.windows) if total is not None else None
    return {k: n for k, n in ledger.counts.items()
            if count_key_parse(k)[0] is None or kept is None or count_key_parse(k)[0] in kept}


def drift_fix(drift: Drift) -> bool:
    """Set the player's total to what it should be, if their TOTAL did not
    change since it was read. False if it did: find drifts again."""
    current = drift.total or PlayerTotal(player_id=drift.player_id, player_name=drift.player_name or drift.player_id,
                                         reached_at_ms=drift.reached_at_ms)
    new = replace(current, total=drift.expected, version=current.version + 1,
                  on_leaderboard=current.on_leaderboard or drift.expected > 0,
                  counts=drift.counts if drift.counts is not None else current.counts)
    return store.total_put_if_version(total=new, expected_version=current.version)
