"""Drift: TOTAL items that disagree with the SCORE items they sum.

The rule (``domain.total_expected``) is pure; this service reads the table
for it and, asked to, corrects the TOTALs. ``rebuild_totals`` is its command.
DynamoDB stays the source of truth: the SCORE items are the ledger.
"""

from collections import Counter
from dataclasses import dataclass, replace

from tqdm import tqdm

from scoring import store
from scoring.domain import PlayerTotal, Status, total_expected


@dataclass(frozen=True, slots=True)
class Drift:
    player_id: str
    stored: int
    expected: int
    total: PlayerTotal | None  # the TOTAL as read; None: the player has none


def drifts_find(*, progress: bool = False) -> list[Drift]:
    """Every player whose TOTAL differs from what their SCORE items give.
    Two full scans: an ops tool, never a hot path."""
    applied: Counter = Counter()
    applied_ids: set[str] = set()
    pending_ids: set[str] = set()
    pending_reviews: dict[str, str] = {}  # review id -> the held submission it decides
    approx = store.table_item_count_approx()
    for submission in tqdm(store.scores_scan(), total=approx or None, unit="score", desc="scanning scores",
                           disable=not progress):
        if submission.review_of is not None:
            # A review's points are on the submission it approved, which
            # is written first: count them there, once.
            if submission.status is Status.PENDING:
                pending_reviews[submission.id] = submission.review_of
        elif submission.status is Status.APPLIED:
            applied[submission.player_id] += submission.points or 0
            applied_ids.add(submission.id)
        elif submission.status is Status.PENDING:
            pending_ids.add(submission.id)
    # A pending review counts through the TOTAL's ``pending`` until the
    # submission it approved shows the points.
    pending_ids |= {rid for rid, original in pending_reviews.items() if original not in applied_ids}
    drifts = []
    for total in store.totals_scan():
        expected = total_expected(applied_points=applied.pop(total.player_id, 0), total=total,
                                  pending_ids=pending_ids)
        if expected != total.total:
            drifts.append(Drift(total.player_id, total.total, expected, total))
    # Applied points but no TOTAL item at all.
    drifts += [Drift(player_id, 0, points, None) for player_id, points in applied.items() if points]
    return sorted(drifts, key=lambda d: d.player_id)


def drift_fix(drift: Drift) -> bool:
    """Set the player's total to what it should be, if their TOTAL did not
    change since it was read. False if it did: find drifts again."""
    current = drift.total or PlayerTotal(player_id=drift.player_id, player_name=drift.player_id)
    new = replace(current, total=drift.expected, version=current.version + 1,
                  on_leaderboard=current.on_leaderboard or drift.expected > 0)
    return store.total_put_if_version(total=new, expected_version=current.version)
