"""Reads for the spectator dashboard on the leaderboard page: the top
players' totals over time, from their ledgers, and the recent activity.
Selectors: nothing here writes."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from scoring import ranking, selectors, store
from scoring.domain import Submission, utcnow, window_keys

# The bound on one history read: at most HISTORY_PLAYERS ledgers, and the
# newest HISTORY_ENTRIES entries of each (one Query of at least 100 index
# entries a player, store._PAGE_READ). A player with more is marked
# ``truncated``: their line starts at the oldest entry read, from ``base``.
HISTORY_PLAYERS = 10
HISTORY_ENTRIES = 100
# How long the API keeps a history it read, for every viewer. Shorter than
# the page's wait before it reads again for a player new to the top
# (history_chart.js, RELOAD_AFTER_MS: 5 s), so that read sees them.
HISTORY_CACHE_SECONDS = 2
# The activity list keeps ranking.ACTIVITY_KEEP completions, and the
# per-minute counts live three hours.
ACTIVITY_RECENT_MAX = ranking.ACTIVITY_KEEP
ACTIVITY_MINUTES_MAX = 180


class ActivityUnavailable(Exception):
    """The live read model (Redis) is not reachable."""


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    at: datetime
    total: int


@dataclass(slots=True)
class HistorySeries:
    """One top player's total in a window over time, oldest first. ``base``
    is the total before ``points[0]``: 0 for a whole window, more when the
    read was capped (``truncated``)."""

    player_id: str
    player: str
    rank: int
    total: int
    base: int = 0
    truncated: bool = False
    points: list[HistoryPoint] = field(default_factory=list)


def window_start(*, window: str, now: datetime) -> datetime | None:
    """When the window's current period began (UTC); None for all time."""
    if window == "all":
        return None
    day = datetime.combine(now.astimezone(UTC).date(), time(0), UTC)
    return day if window == "day" else day - timedelta(days=day.weekday())


def leaderboard_history(*, window: str, players: int = HISTORY_PLAYERS, entries: int = HISTORY_ENTRIES,
                        now: datetime | None = None) -> tuple[datetime | None, list[HistorySeries]]:
    """The top ``players`` of a window (best first) and each one's total
    over time, from their ledger; and when the window began.

    Each line ends at the board's total, what the page shows next to it, and
    goes back entry by entry, so a board ahead of the ledger (a batch whose
    outcomes are not written yet) shows its newest step a moment early,
    never a line ending off the board. Week and day count the submissions
    played in the period (the boards count by play time too). Raises
    selectors.LeaderboardUnavailable (week and day need Redis) and
    store.StoreUnavailable.
    """
    now = now or utcnow()
    top = selectors.leaderboard_top(window=window, limit=min(players, HISTORY_PLAYERS))
    period = None if window == "all" else window_keys(now)[window]
    series = []
    # One after another: moto walks the whole table per Query, and ten at
    # once outlast the client's read timeout (tried); on AWS a Query costs
    # O(result), so ten in a row stay cheap.
    for entry in top:
        listed, truncated = _ledger_in_period(entry["player_id"], window, period, entries)
        line = HistorySeries(player_id=entry["player_id"], player=entry["player"], rank=entry["rank"],
                             total=entry["total"], truncated=truncated)
        balance = entry["total"]
        for s in listed:  # newest first: each entry's balance is the one after it
            line.points.append(HistoryPoint(at=s.submitted_at, total=balance))
            balance -= s.points or 0
        line.points.reverse()
        line.base = balance
        series.append(line)
    return window_start(window=window, now=now), series


def _ledger_in_period(player_id: str, window: str, period: str | None, limit: int) -> tuple[list[Submission], bool]:
    """The player's newest ``limit`` ledger entries in the period (newest
    first), and whether there are more. One more than asked is read: it
    says so without a second Query. The ledger is newest first, so one
    entry from before the period means the whole period was read.

    Week and day leave adjustments out: a rules change re-scores the
    periods its submissions were played in, not the one it was made in.
    """
    items = store.ledger_for_player(player_id=player_id, limit=limit + 1).items
    if period is not None:
        items = [s for s in items if not s.is_adjustment and window_keys(s.submitted_at)[window] == period]
    return items[:limit], len(items) > limit


# What one activity item must carry to be shown; older or malformed ones are skipped.
_ACTIVITY_FIELDS = ("player_id", "player", "task", "points", "at")


def activity_overview(*, recent: int, minutes: int, now: datetime | None = None) -> dict:
    """``{"recent": [...], "per_minute": [...]}``: the latest applied
    completions, newest first, and completions applied per minute over the
    last ``minutes``, oldest first (this minute included). Raises
    ActivityUnavailable without Redis."""
    try:
        items = ranking.activity_recent(limit=recent)
        per_minute = ranking.activity_per_minute(minutes, now=now)
    except ranking.RankingUnavailable as exc:
        raise ActivityUnavailable(str(exc)) from exc
    shown = [{**a, "task_title": a.get("task_title") or a["task"]} for a in items
             if isinstance(a, dict) and all(a.get(k) is not None for k in _ACTIVITY_FIELDS)]
    return {"recent": shown, "per_minute": per_minute}
