"""Drift: TOTAL items that disagree with the SCORE items they sum.

The rule (``domain.total_expected``) is pure; this service reads the table
for it and, asked to, corrects the TOTALs. ``rebuild_totals`` is its command.
DynamoDB stays the source of truth: the SCORE items are the ledger.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from tqdm import tqdm

from scoring import store
from scoring.domain import PlayerTotal, Status, count_key, count_key_parse, total_expected, window_keys


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


def drifts_find(*, progress: bool = False) -> list[Drift]:
    """Every player whose TOTAL differs from what their SCORE items give.
    Two full scans (consistent reads): an ops tool, never a hot path. Exact
    when nothing is being processed; beside a running consumer, a player
    whose batch lands between the two scans can seem to drift:
    ``drifts_confirmed`` tells those apart."""
    ledgers: dict[str, _Ledger] = defaultdict(_Ledger)
    applied_ids: set[str] = set()
    pending_ids: set[str] = set()
    pending_reviews: dict[str, str] = {}  # review id -> the held submission it decides
    approx = store.table_item_count_approx()
    for submission in tqdm(store.scores_scan(consistent=True), total=approx or None, unit="score",
                           desc="scanning scores",
                           disable=not progress):
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
                for window in (None, *window_keys(submission.submitted_at).values()):
                    ledger.counts[count_key(submission.task, submission.points or 0, window,
                                            submission.rules_version or 0)] += 1
        elif submission.status is Status.PENDING:
            pending_ids.add(submission.id)
    # A pending review counts through the TOTAL's ``pending`` until the
    # submission it approved shows the points.
    pending_ids |= {rid for rid, original in pending_reviews.items() if original not in applied_ids}
    drifts = []
    for total in store.totals_scan(consistent=True):
        ledger = ledgers.pop(total.player_id, _Ledger())
        expected = total_expected(applied_points=ledger.applied, total=total, pending_ids=pending_ids)
        counts_off = counts_total(total.counts) != total.total
        if expected != total.total or counts_off:
            in_flight = any(i in pending_ids for i in total.pending)
            drifts.append(Drift(total.player_id, total.total, expected, total,
                                counts=None if in_flight else _counts_rebuilt(ledger, total),
                                counts_drift=counts_off))
    # Applied points but no TOTAL item at all.
    drifts += [Drift(player_id, 0, ledger.applied, None, counts=_counts_rebuilt(ledger, None))
               for player_id, ledger in ledgers.items() if ledger.applied]
    return sorted(drifts, key=lambda d: d.player_id)


def drifts_confirmed(*, progress: bool = False) -> tuple[list[Drift], list[str]]:
    """The drifts found twice, each time at the same TOTAL version and the
    same numbers; and the players found drifting once only (their TOTAL
    changed in between: run it again to check them).

    One pass reads the SCORE items, then the TOTALs, so a submission made
    after the first scan and applied before the second is in its TOTAL but
    not in the ledger read: a drift that is not there. ``--fix`` would then
    take correctly applied points away. In the second pass that submission
    is in the ledger; only a new batch for the same player could fake the
    drift again, and that batch changes the TOTAL's version. A real drift,
    with nobody writing the player's TOTAL, is the same both times."""
    first = {_seen(d): d for d in drifts_find(progress=progress)}
    if not first:
        return [], []
    second = drifts_find(progress=progress)
    confirmed = [d for d in second if _seen(d) in first]
    confirmed_ids = {d.player_id for d in confirmed}
    changed = sorted({d.player_id for d in [*first.values(), *second]} - confirmed_ids)
    return confirmed, changed


def _seen(drift: Drift) -> tuple:
    return (drift.player_id, drift.total.version if drift.total else None, drift.stored, drift.expected,
            drift.counts_drift)


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
    current = drift.total or PlayerTotal(player_id=drift.player_id, player_name=drift.player_id)
    new = replace(current, total=drift.expected, version=current.version + 1,
                  on_leaderboard=current.on_leaderboard or drift.expected > 0,
                  counts=drift.counts if drift.counts is not None else current.counts)
    return store.total_put_if_version(total=new, expected_version=current.version)
