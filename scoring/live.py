"""After each batch: update the leaderboard read model, then push to browsers.

The one after-batch step of every consumer shape: ``consume_scores``'s
workers and the Lambda handler both run it, after the batch's TOTALs are
committed and before its outcomes are written.

Redis being down must not fail a batch: totals are already safe in
DynamoDB. It must not leave the boards wrong for good either, and a Lambda
container keeps nothing between invocations, so a missed update is recorded
where every process can see it: the ``BOARDS/STALE`` item in the table
(``store.boards_stale_mark``). Whoever sees the marker next heals the boards:
rebuilds them from the TOTAL items (under a Redis lock, so one process at a
time) and deletes the marker, unless another miss was marked meanwhile.
Workers look every refresh interval (``heal_if_stale``); the Lambda handler
at the start of every invocation. docs/consumer.md has the argument.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings

from scoring import broadcast, ranking, store
from scoring.domain import Status
from scoring.processing import BatchResult

logger = logging.getLogger(__name__)


class LiveUpdater:
    def __init__(self, *, push: Callable[[list[tuple[str, dict]]], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.push = push or broadcast.push
        self.clock = clock
        self.stale = False  # this process saw the boards miss an update, or found the marker
        self.pushes_failed = 0
        self.heals = 0

    def after_batch(self, result: BatchResult) -> None:
        """Update boards and push one message per changed board, plus each
        player's own submission outcomes. Without REDIS_URL there are no
        boards and no layer another process could hear: nothing to do.

        Never fails for Redis. Raises StoreUnavailable only if the boards
        missed this batch and DynamoDB cannot take the marker either: then
        the batch is retried, which updates the boards again.
        """
        if not settings.REDIS_URL:
            return
        try:
            self._after_batch(result)
        except store.StoreUnavailable:
            raise
        except Exception:  # noqa: BLE001 - the totals are committed; a push must never undo that
            logger.exception("Live update after a batch failed; totals are applied, browsers resync later.")

    def _after_batch(self, result: BatchResult) -> None:
        if self.stale:
            self.heal_if_stale()
        changes = self._update_boards(result)
        ranks = {e.player_id: e for c in changes if c.window == "all" for e in c.changes}
        result.ranks.update({p: e.rank for p, e in ranks.items()})
        messages = [(broadcast.leaderboard_group(c.window), _delta(c)) for c in changes]
        for decision in result.applied + result.rejected + result.held:
            submission = decision.submission
            entry = ranks.get(submission.player_id)
            total = result.totals.get(submission.player_id)
            if submission.is_adjustment:
                messages.append((broadcast.player_group(submission.player_id), {
                    "type": "player.adjustment",
                    "adjustment": _adjustment(decision, total, entry),
                }))
                continue
            messages.append((broadcast.player_group(submission.player_id), {
                "type": "player.submission",
                "submission": {
                    # A review's outcome is that of the submission it decided:
                    # the one the player's page knows.
                    "id": submission.review_of or submission.id,
                    "task": submission.task,
                    "status": str(decision.status),
                    "points": decision.points,
                    "error": decision.error,
                    "hold_reason": decision.hold_reason,
                    "total": total.total if total and decision.status is Status.APPLIED else None,
                    "rank": entry.rank if entry and decision.status is Status.APPLIED else None,
                },
            }))
        try:
            self.push(messages)
        except Exception as exc:  # noqa: BLE001 - a push is best effort; browsers resync on reconnect
            self.pushes_failed += 1
            logger.warning("Could not push %d message(s) to browsers: %r", len(messages), exc)

    def _update_boards(self, result: BatchResult) -> list[ranking.BoardChange]:
        if not result.totals:
            return []
        try:
            return ranking.boards_update(list(result.totals.values()))
        except ranking.RankingUnavailable as exc:
            store.boards_stale_mark(now_ms=int(self.clock() * 1000))
            if not self.stale:
                logger.warning("Leaderboard read model unavailable (%s); totals still apply. The boards are "
                               "marked stale and will be rebuilt when Redis returns.", exc)
            self.stale = True
            return []

    def heal_if_stale(self) -> bool:
        """Rebuild the boards from DynamoDB if they are marked stale and Redis
        is back. True if this call healed them. Never raises: a heal that
        cannot run now is tried again on the next call."""
        if not settings.REDIS_URL:
            return False
        try:
            marker = store.boards_stale_get()
            if marker is None:
                self.stale = False
                return False
            self.stale = True
            with ranking.rebuild_lock() as held:
                if not held:
                    return False  # another process is healing them
                count = ranking.boards_rebuild(store.totals_scan())
            healed = store.boards_stale_clear(seen=marker)
        except (ranking.RankingUnavailable, store.StoreUnavailable) as exc:
            logger.info("Boards still stale (%s); healing them later.", exc)
            return False
        self.heals += 1
        lag_s = max(0.0, self.clock() - marker.since_ms / 1000)
        logger.info("Redis is back: rebuilt the leaderboards from %d totals (%d missed update(s), stale for %.0f s).",
                    count, marker.misses, lag_s)
        self.stale = not healed
        return healed


def _adjustment(decision, total, entry) -> dict:
    """A player's adjustment as their pages show it: "Hard re-scored 50 → 60: +30"."""
    adjustment = decision.submission
    return {"id": adjustment.id, "rules_change": adjustment.rules_change, "summary": adjustment.summary,
            "reason": adjustment.reason, "delta": decision.points,
            "total": total.total if total else None, "rank": entry.rank if entry else None}


def _delta(change: ranking.BoardChange) -> dict:
    return {
        "type": "leaderboard.delta",
        "window": change.window,
        "seq": change.seq,
        "changes": [e.as_dict() for e in change.changes],
        "joined": [e.as_dict() for e in change.joined],
        "left": change.left,
        "top": [e.as_dict() for e in change.top],
    }
