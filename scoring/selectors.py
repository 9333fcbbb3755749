"""Reads. Selectors never write, to DynamoDB or to the relational database."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from scoring import ranking, store
from scoring.domain import Page, Status, Submission, review_id, utcnow
from scoring.models import RulesChange, Task

_CURSOR_SALT = "scoring.submissions.cursor"
_LEDGER_SALT = "scoring.ledger.cursor"


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
    so that someone else's id is indistinguishable from a missing one.
    The SCORE items that are not the player's submissions (a staff review,
    a rules change's adjustment: the ledger shows those) are None too, as
    the list leaves them out."""
    submission = store.score_get(submission_id=submission_id)
    if (submission is None or submission.player_id != player_id or submission.review_of is not None
            or submission.is_adjustment):
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


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One line of a player's ledger: an applied submission, or an
    adjustment a rules change made. ``points`` is what it added (an
    adjustment's delta), ``balance`` the total just after it. The ledger is
    in ``submitted_at`` order: when a task was played, when an adjustment
    was made."""

    kind: str  # "submission" or "adjustment"
    id: str
    points: int
    balance: int
    applied_at: object
    rules_version: int
    rank: int | None = None
    task: str | None = None
    task_title: str | None = None
    difficulty: str | None = None
    submitted_at: object = None
    rules_change: int | None = None
    summary: str | None = None
    reason: str | None = None


def ledger_page(*, player_id: str, limit: int, cursor: str | None = None) -> tuple[list[LedgerEntry], str | None, int]:
    """A page of the player's ledger, newest first, the next cursor, and
    the total the whole ledger sums to.

    That total is the TOTAL item's, less what it counts but whose outcome
    is not written yet (a batch between its commit and its outcomes): the
    ledger lists outcomes, so the two agree to the point. The cursor, signed
    like the submissions list's, carries the running balance, so each
    entry says the total just after it on every page.
    """
    start_key = None
    if cursor:
        try:
            state = signing.loads(cursor, salt=_LEDGER_SALT)
        except signing.BadSignature:
            raise InvalidCursor("Invalid cursor.") from None
        if (not isinstance(state, dict) or not isinstance(state.get("k"), dict)
                or store.score_start_key_owner(state["k"]) != player_id):
            raise InvalidCursor("Invalid cursor.")
        start_key, balance, total = state["k"], int(state["b"]), int(state["t"])
    else:
        total = balance = _ledger_total(player_id)
    page: Page = store.ledger_for_player(player_id=player_id, limit=limit, start_key=start_key)
    difficulty_at = _DifficultyHistory()
    entries = []
    for s in page.items:
        version = s.rules_version or 0
        common = {"id": s.id, "points": s.points or 0, "balance": balance, "applied_at": s.processed_at,
                  "submitted_at": s.submitted_at, "rules_version": version, "rank": s.rank}
        if s.is_adjustment:
            entries.append(LedgerEntry("adjustment", rules_change=s.rules_change, summary=s.summary,
                                       reason=s.reason, **common))
        else:
            entries.append(LedgerEntry("submission", task=s.task, task_title=difficulty_at.title(s.task),
                                       difficulty=difficulty_at(s.task, version), **common))
        balance -= s.points or 0
    next_cursor = None
    if page.next_key:
        next_cursor = signing.dumps({"k": page.next_key, "b": balance, "t": total}, salt=_LEDGER_SALT, compress=True)
    return entries, next_cursor, total


def _ledger_total(player_id: str) -> int:
    """The player's total as their ledger sums it (see ledger_page)."""
    total = store.totals_get_many(player_ids=[player_id]).get(player_id)
    if total is None:
        return 0
    counted = store.scores_get_many(submission_ids=list(total.pending)) if total.pending else {}
    unwritten = sum(points for sub_id, points in total.pending.items()
                    if sub_id in counted and counted[sub_id].status is not Status.APPLIED)
    return total.total - unwritten


class _DifficultyHistory:
    """A task's difficulty under a rules version, from the task moves in
    the rules history: after the latest move at or before that version,
    else before the first one after it, else the task's difficulty now."""

    def __init__(self):
        self.moves: dict[str, list[RulesChange]] = {}
        for change in RulesChange.objects.filter(task__isnull=False).order_by("id"):
            for slug in change.rescore:
                self.moves.setdefault(slug, []).append(change)
        self.tasks = {t.slug: t for t in Task.objects.select_related("difficulty")}

    def __call__(self, slug: str, version: int) -> str | None:
        moves = self.moves.get(slug, [])
        done = [m for m in moves if m.pk <= version]
        if done:
            return done[-1].after.get("difficulty")
        if moves:
            return moves[0].before.get("difficulty")
        task = self.tasks.get(slug)
        return task.difficulty.name if task else None

    def title(self, slug: str) -> str:
        task = self.tasks.get(slug)
        return task.title if task else slug


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
    """What a socket sends first: which board (``ranking.board_id``: a day or
    week is a new board, its seq counted from 0 again) and its seq, its top
    N, the viewer, and the pipeline's freshness (the last batch's
    ``pipeline`` and the last worker ``heartbeat_at``, with the server's
    ``now`` to read them against on a browser whose clock is off).

    Without the read model (Redis down) the all-time board comes from
    DynamoDB with seq 0, so any later delta replaces it.
    """
    limit = settings.LEADERBOARD_SIZE
    now = utcnow()
    read = {"board": ranking.board_id(window, now), "limit": limit, "now": ranking.iso(int(now.timestamp() * 1000))}
    try:
        entries, seq = ranking.top(window, limit, now=now)
        me = ranking.entry(window, player_id, now=now) if player_id else None
        return {**read, "seq": seq, "entries": [e.as_dict() for e in entries], "me": me.as_dict() if me else None,
                **ranking.pipeline_state()}
    except ranking.RankingUnavailable:
        try:
            entries = leaderboard_top(window=window, limit=limit)
        except (LeaderboardUnavailable, store.StoreUnavailable):
            entries = []
        return {**read, "seq": 0, "entries": entries, "me": None, "degraded": True,
                "pipeline": {"lag_ms": None, "as_of": None}, "heartbeat_at": None}


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
    retried, final = store.retry_states(submission_ids=[s.id for s in rejected] + [d.submission_id for d in dead
                                                                                   if d.submission_id])
    return {"workers": workers, "rejected": rejected, "dead_letters": dead, "retried": retried, "final": final}


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
