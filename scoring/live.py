"""After each batch: update the leaderboard read model, then push to browsers.

The one after-batch step of every consumer shape: ``consume_scores``'s
workers and the Lambda handler both run it, after the batch's TOTALs are
committed and before its outcomes are written.

Redis being down must not fail a batch: totals are already safe in
DynamoDB. It must not leave the boards wrong for good either, and a Lambda
container keeps nothing between invocations, so a missed update is recorded
where every process can see it: the ``BOARDS/STALE`` item in the table
(``store.boards_stale_mark``). ``manage.py rebuild_leaderboard`` marks it
too before it clears the boards, so one that fails part-way is healed the
same way. Whoever sees the marker next heals the boards:
rebuilds them from the TOTAL items (under a Redis lock, so one process at a
time) and deletes the marker, unless another miss was marked meanwhile.
Workers look every refresh interval (``heal_if_stale``); the Lambda handler
at the start of every invocation. docs/consumer.md has the argument.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings

from scoring import broadcast, metrics, ranking, selectors, store
from scoring.domain import WINDOWS, Status
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
        pipeline, activity, completed = self._record_pipeline(result)
        messages = [(broadcast.leaderboard_group(c.window),
                     {**_delta(c), "pipeline": pipeline, "activity": activity, "applied": completed})
                    for c in changes]
        messages += [(broadcast.player_group(rc.player_id), rc.as_message()) for c in changes for rc in c.rank_changes]
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

    def _record_pipeline(self, result: BatchResult) -> tuple[dict, list[dict], int]:
        """The batch's freshness (``{"lag_ms", "as_of"}``: its largest
        submit -> applied latency, and when it was applied) and its applied
        completions (the first ACTIVITY_PUSHED, newest first, and how many);
        recorded for the boards' first paint, and timed."""
        now_ms = int(self.clock() * 1000)
        decided = result.applied + result.rejected + result.held
        lags = [max(0, now_ms - int(d.submission.submitted_at.timestamp() * 1000)) for d in decided]
        for d in result.applied:
            metrics.SUBMIT_TO_APPLIED.observe(max(0.0, now_ms / 1000 - d.submission.submitted_at.timestamp()))
        lag_ms = max(lags, default=0)
        metrics.PIPELINE_LAG.set(lag_ms / 1000)
        if decided:  # a batch of only rejections or holds is work done too: no stall
            metrics.PIPELINE_LAST_BATCH.set(now_ms / 1000)
        titles = _titles({d.submission.task for d in result.applied if not d.submission.is_adjustment})
        completions = [d for d in reversed(result.applied) if not d.submission.is_adjustment]
        activity = [{"player_id": d.submission.player_id, "player": d.submission.player_name,
                     "task": d.submission.task, "task_title": titles.get(d.submission.task, d.submission.task),
                     "points": d.points, "at": ranking.iso(int(d.submission.submitted_at.timestamp() * 1000))}
                    for d in completions[:ACTIVITY_PUSHED]]
        try:
            ranking.pipeline_record(lag_ms=lag_ms, as_of_ms=now_ms, activity=activity, applied=len(completions))
        except ranking.RankingUnavailable as exc:
            logger.info("Could not record the batch's freshness (%s).", exc)
        return {"lag_ms": lag_ms, "as_of": ranking.iso(now_ms)}, activity, len(completions)

    def heartbeat(self) -> None:
        """Tell every board this worker is alive, with the last batch's
        freshness: a board with no heartbeat for PIPELINE_DELAYED_AFTER_SECONDS
        shows "delayed". Never raises: a missed heartbeat is the signal."""
        if not settings.REDIS_URL:
            return
        try:
            state = ranking.pipeline_heartbeat(at_ms=int(self.clock() * 1000))
            message = {"type": "pipeline.heartbeat", "at": state["heartbeat_at"], "pipeline": state["pipeline"]}
            self.push([(broadcast.leaderboard_group(w), message) for w in WINDOWS])
        except Exception as exc:  # noqa: BLE001 - best effort, like every push
            logger.info("Could not push a heartbeat (%r).", exc)

    def _update_boards(self, result: BatchResult) -> list[ranking.BoardChange]:
        if not result.totals:
            return []
        try:
            # Nothing, while a rebuild has them loaded part-way (see there).
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
        logger.info("Healed the stale leaderboards: rebuilt them from %d totals (%d missed update(s) or stopped "
                    "rebuild(s), stale for %.0f s).",
                    count, marker.misses, lag_s)
        self.stale = not healed
        self.announce_rebuilt()
        return healed

    def announce_rebuilt(self) -> None:
        """Tell every board's sockets to read a new snapshot. A browser that
        reconnected once Redis was back, but before this rebuild, holds the
        board as Redis had it then (empty, after a restart), and the deltas
        it missed are gone: no later delta alone would mend it. Best effort:
        a socket that misses this is as stale as it was."""
        try:
            self.push([(broadcast.leaderboard_group(w), {"type": "leaderboard.rebuilt"}) for w in WINDOWS])
        except Exception as exc:  # noqa: BLE001 - best effort, like every push
            logger.info("Could not announce the rebuilt boards (%r).", exc)


# Completions a delta lists (newest first): the feed shows a few; the
# count, ``applied``, is the batch's whole.
ACTIVITY_PUSHED = 20


def _titles(slugs: set[str]) -> dict[str, str]:
    titles = {}
    for slug in slugs:
        task = selectors.task_get_active(slug=slug)
        if task is not None:
            titles[slug] = task.title
    return titles


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
        "board": change.board,
        "seq": change.seq,
        "changes": [e.as_dict() for e in change.changes],
        "joined": [e.as_dict() for e in change.joined],
        "left": change.left,
        "top": [e.as_dict() for e in change.top],
    }
