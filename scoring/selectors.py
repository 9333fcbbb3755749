"""Reads. Selectors never write, to DynamoDB or to the relational database."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from scoring import ranking, store
from scoring.domain import Page, Submission, review_id
from scoring.models import Task

_CURSOR_SALT = "scoring.submissions.cursor"


class InvalidCursor(Exception):
    pass


def task_get_active(*, slug: str) -> Task | None:
    """The active task with this slug, with its difficulty, or None.

    Served from a per-process snapshot of the active catalog that lives
    settings.TASK_CACHE_SECONDS: the submit path is the hot path, building the
    ORM query was a fifth of its CPU, and the catalog changes only when an
    admin edits it. A task deactivated in admin is refused within that time.
    """
    return _active_tasks_by_slug().get(slug)


_catalog: tuple[float, dict[str, Task]] = (0.0, {})


def _active_tasks_by_slug() -> dict[str, Task]:
    global _catalog
    expires, tasks = _catalog
    now = time.monotonic()
    if now >= expires:
        tasks = {task.slug: task for task in Task.objects.active().select_related("difficulty")}
        _catalog = (now + settings.TASK_CACHE_SECONDS, tasks)
    return tasks


def task_cache_clear() -> None:
    """Forget the catalog snapshot (after an admin edit in this process)."""
    global _catalog
    _catalog = (0.0, {})


def task_list_active() -> list[Task]:
    return list(Task.objects.active().select_related("difficulty"))


def submission_get(*, player_id: str, submission_id: str) -> Submission | None:
    """The submission if it exists and belongs to this player; else None,
    so that someone else's id is indistinguishable from a missing one."""
    submission = store.score_get(submission_id=submission_id)
    if submission is None or submission.player_id != player_id:
        return None
    return submission


def submission_list(*, player_id: str, limit: int, cursor: str | None = None) -> tuple[list[Submission], str | None]:
    """A page of the player's submissions, newest first, and the next cursor.

    The cursor is DynamoDB's LastEvaluatedKey, signed so that a client can
    neither forge one nor use another player's.
    """
    start_key = None
    if cursor:
        try:
            start_key = signing.loads(cursor, salt=_CURSOR_SALT)
        except signing.BadSignature:
            raise InvalidCursor("Invalid cursor.") from None
        if not isinstance(start_key, dict) or store.score_start_key_owner(start_key) != player_id:
            raise InvalidCursor("Invalid cursor.")
    page: Page = store.score_list_for_player(player_id=player_id, limit=limit, start_key=start_key)
    next_cursor = signing.dumps(page.next_key, salt=_CURSOR_SALT, compress=True) if page.next_key else None
    return page.items, next_cursor


class LeaderboardUnavailable(Exception):
    pass


def leaderboard_top(*, window: str = "all", limit: int) -> list[dict]:
    """The top ``limit`` of a window, from the Redis read model.

    Without Redis, the all-time board is read from DynamoDB's leaderboard
    index instead (the source of truth); week and day boards exist only in
    the read model.
    """
    try:
        entries, _ = ranking.top(window, limit)
        return [e.as_dict() for e in entries]
    except ranking.RankingUnavailable as exc:
        if window != "all":
            raise LeaderboardUnavailable(str(exc)) from exc
    return [e.as_dict() for e in store.leaderboard_top(limit=limit)]


def leaderboard_around(*, window: str, player_id: str, k: int) -> tuple[dict | None, list[dict]]:
    """The player's entry and the ``k`` players either side (Redis only)."""
    try:
        me, near = ranking.around(window, player_id, k)
    except ranking.RankingUnavailable as exc:
        raise LeaderboardUnavailable(str(exc)) from exc
    return (me.as_dict() if me else None), [e.as_dict() for e in near]


def leaderboard_snapshot(*, window: str, player_id: str | None) -> dict:
    """What a socket sends first: the board's seq, its top N, and the viewer.

    Without the read model (Redis down) the all-time board comes from
    DynamoDB with seq 0, so any later delta replaces it.
    """
    limit = settings.LEADERBOARD_SIZE
    try:
        entries, seq = ranking.top(window, limit)
        me = ranking.entry(window, player_id) if player_id else None
        return {"seq": seq, "limit": limit, "entries": [e.as_dict() for e in entries],
                "me": me.as_dict() if me else None}
    except ranking.RankingUnavailable:
        try:
            entries = leaderboard_top(window=window, limit=limit)
        except (LeaderboardUnavailable, store.StoreUnavailable):
            entries = []
        return {"seq": 0, "limit": limit, "entries": entries, "me": None, "degraded": True}


def pipeline_overview(*, recent: int = 20) -> dict:
    """Workers with their shards and recent throughput and lag, and the
    latest rejected and dead-lettered submissions."""
    workers = []
    for worker_id, status in sorted(store.worker_statuses().items()):
        history = status.get("history") or []
        rates = [(b[1] - a[1]) / max(1, b[0] - a[0]) for a, b in zip(history, history[1:], strict=False)]
        workers.append({
            "id": worker_id,
            "shards": status.get("shards", {}),
            "stats": status.get("stats", {}),
            "rate": rates[-1] if rates else 0.0,
            "rate_points": _sparkline(rates),
            "lag_points": _sparkline([h[2] for h in history]),
            "lag_ms": history[-1][2] if history else None,
        })
    dead = store.dlq_all()[-recent:]
    rejected = store.rejected_recent(limit=recent)
    retried = store.retried_ids(submission_ids=[s.id for s in rejected] + [d.submission_id for d in dead
                                                                          if d.submission_id])
    return {"workers": workers, "rejected": rejected, "dead_letters": dead, "retried": retried}


@dataclass(frozen=True, slots=True)
class HeldForReview:
    """A held submission, with what staff need to judge it."""

    submission: Submission
    history: list[Submission]  # the player's latest submissions, newest first
    review: Submission | None  # a decision already made, waiting for the stream to apply it


def review_queue(*, limit: int = 50, history: int = 8) -> list[HeldForReview]:
    """Held submissions, oldest first, each with the player's recent
    history and any decision already taken on it."""
    held = store.held_list(limit=limit)
    reviews = store.scores_get_many(submission_ids=[review_id(s.id) for s in held])
    histories: dict[str, list[Submission]] = {}
    for s in held:
        if s.player_id not in histories:
            histories[s.player_id] = store.score_list_for_player(player_id=s.player_id, limit=history).items
    return [HeldForReview(s, histories[s.player_id], reviews.get(review_id(s.id))) for s in held]


def _sparkline(values: list[float], width: int = 200, height: int = 40) -> str:
    """SVG polyline points for a small chart of recent values."""
    if len(values) < 2:
        return ""
    top = max(values) or 1
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - (v / top) * height:.1f}" for i, v in enumerate(values))
