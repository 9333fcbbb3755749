"""After each batch: update the leaderboard read model, then push to browsers.

Runs in the consumer after the batch's writes to DynamoDB have succeeded.
Redis being down must not stop scoring, so nothing here fails the batch:
totals are already safe in DynamoDB. When Redis comes back, the boards are
rebuilt from DynamoDB once, because updates made while it was down are
missing from them.
"""

import logging
from collections.abc import Callable

from django.conf import settings

from scoring import broadcast, ranking, store
from scoring.domain import Status
from scoring.processing import BatchResult

logger = logging.getLogger(__name__)


class LiveUpdater:
    def __init__(self, *, push: Callable[[list[tuple[str, dict]]], None] = broadcast.push):
        self.push = push
        self.boards_stale = False
        self.pushes_failed = 0

    def after_batch(self, result: BatchResult) -> None:
        """Update boards and push one message per changed board, plus each
        player's own submission outcomes. Without REDIS_URL there are no
        boards and no layer another process could hear: nothing to do."""
        if not settings.REDIS_URL:
            return
        changes = self._update_boards(result)
        ranks = {e.player_id: e for c in changes if c.window == "all" for e in c.changes}
        messages = [(broadcast.leaderboard_group(c.window), _delta(c)) for c in changes]
        for decision in result.applied + result.rejected:
            submission = decision.submission
            entry = ranks.get(submission.player_id)
            total = result.totals.get(submission.player_id)
            messages.append((broadcast.player_group(submission.player_id), {
                "type": "player.submission",
                "submission": {
                    "id": submission.id,
                    "task": submission.task,
                    "status": str(decision.status),
                    "points": decision.points,
                    "error": decision.error,
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
        try:
            if self.boards_stale:
                count = ranking.boards_rebuild(store.totals_scan())
                logger.info("Redis is back: rebuilt the leaderboards from %d totals.", count)
                self.boards_stale = False
            return ranking.boards_update(list(result.totals.values()))
        except ranking.RankingUnavailable as exc:
            if not self.boards_stale:
                logger.warning("Leaderboard read model unavailable (%s); totals still apply. "
                               "The boards will be rebuilt when Redis returns.", exc)
            self.boards_stale = True
            return []


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
