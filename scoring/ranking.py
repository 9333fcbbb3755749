"""The leaderboard read model: Redis sorted sets kept up to date by the stream processor.

DynamoDB's TOTAL items stay the source of truth; these boards can be rebuilt
from them at any time (`manage.py rebuild_leaderboard`). A board per window:
``lb:all``, ``lb:week:<ISO week>``, ``lb:day:<date>`` (UTC).

Ranking with ties broken by who got there first: every member has score 0
and is named ``domain.rank_member`` (the rank key the DynamoDB index sorts
by too, then the player), so Redis orders a board lexicographically, which
is exactly (total desc, reached asc) read in reverse. ZREVRANK is O(log n). Updates carry the TOTAL
item's version and are ignored when older than what the board holds, so two
workers finishing out of order cannot make a board go back in time.
"""

import contextlib
import functools
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings

from scoring.domain import (
    WINDOWS,
    LeaderboardEntry,
    PlayerTotal,
    rank_member,
    rank_member_parse,
    utcnow,
    window_keys,
)

_TTL = {"all": 0, "week": 15 * 86400, "day": 3 * 86400}

# KEYS: board zset, members hash, versions hash.  ARGV: player, member, version, ttl.
_UPDATE = """
local v = redis.call('HGET', KEYS[3], ARGV[1])
if v and tonumber(v) >= tonumber(ARGV[3]) then return 0 end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('ZREM', KEYS[1], old) end
redis.call('ZADD', KEYS[1], 0, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if tonumber(ARGV[4]) > 0 then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
return 1
"""


class RankingUnavailable(Exception):
    """Redis is not configured or not reachable."""


@dataclass(slots=True)
class BoardChange:
    """What one batch did to one board: for one coalesced push."""

    window: str
    seq: int
    changes: list[LeaderboardEntry] = field(default_factory=list)
    joined: list[LeaderboardEntry] = field(default_factory=list)
    left: list[dict] = field(default_factory=list)
    top: list[LeaderboardEntry] = field(default_factory=list)


def client() -> redis.Redis:
    url = settings.REDIS_URL
    if not url:
        raise RankingUnavailable("REDIS_URL is not set")
    return _client(url)


@functools.lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1,
                                health_check_interval=30)


def board_key(window: str, now: datetime | None = None) -> str:
    """The Redis key of a window's current board."""
    if window == "all":
        return "lb:all"
    return "lb:" + window_keys(now or utcnow())[window]


def _call(fn):
    try:
        return fn()
    except redis.RedisError as exc:
        raise RankingUnavailable(str(exc)) from exc


def size() -> int:
    return settings.LEADERBOARD_SIZE


# --- writes (the consumer) ------------------------------------------------------


def boards_update(totals: list[PlayerTotal], *, now: datetime | None = None) -> list[BoardChange]:
    """Put these totals on the current boards; return what changed, per board.

    Raises RankingUnavailable, never a raw Redis error: callers decide what
    an unavailable read model means for them.
    """
    if not totals:
        return []
    try:
        return _boards_update(totals, now=now)
    except redis.RedisError as exc:
        raise RankingUnavailable(str(exc)) from exc


def _boards_update(totals: list[PlayerTotal], *, now: datetime | None) -> list[BoardChange]:
    now = now or utcnow()
    r = client()
    n = size()
    script = r.register_script(_UPDATE)
    changes = []
    for window in WINDOWS:
        key = board_key(window, now)
        before = {e.player_id for e in _top(r, key, n)}
        pipe = r.pipeline(transaction=False)
        updated_players = []
        for total in totals:
            value = total.total if window == "all" else total.windows.get(key.removeprefix("lb:"), 0)
            if value <= 0:
                continue
            member = rank_member(total=value, reached_at_ms=total.reached_at_ms, player_id=total.player_id)
            script(keys=[key, key + ":members", key + ":versions"],
                   args=[total.player_id, member, total.version, _TTL[window]], client=pipe)
            updated_players.append(total.player_id)
        if not updated_players:
            continue
        pipe.hset("lb:names", mapping={t.player_id: t.player_name for t in totals})
        results = _call(pipe.execute)
        if not any(results[: len(updated_players)]):
            continue  # every update was older than the board: nothing to say
        change = BoardChange(window=window, seq=_call(functools.partial(r.incr, key + ":seq")))
        change.top = _top(r, key, n)
        after = {e.player_id for e in change.top}
        change.changes = [e for e in (_entry(r, key, p) for p in updated_players) if e is not None]
        change.joined = [e for e in change.top if e.player_id not in before]
        names = _names(r, list(before - after))
        change.left = [{"player_id": p, "player": names.get(p, p)} for p in before - after]
        changes.append(change)
    return changes


@contextlib.contextmanager
def rebuild_lock(*, timeout: float = 600.0):
    """Yields True if this process may rebuild the boards now, False if
    another one holds the lock. Expires after ``timeout`` seconds, so a
    process that dies mid-rebuild cannot block the next one for good."""
    lock = client().lock("lb:rebuild", timeout=timeout, blocking=False)
    held = _call(lock.acquire)
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(redis.RedisError):
                lock.release()


def boards_rebuild(totals, *, now: datetime | None = None) -> int:
    """Replace the current boards with these totals (from DynamoDB)."""
    now = now or utcnow()
    r = client()
    keys = [board_key(w, now) for w in WINDOWS]
    _call(lambda: r.delete(*[k + suffix for k in keys for suffix in ("", ":members", ":versions")]))
    count = 0
    batch = []
    for total in totals:
        batch.append(total)
        if len(batch) == 500:
            boards_update(batch, now=now)
            count += len(batch)
            batch = []
    boards_update(batch, now=now)
    return count + len(batch)


# --- reads (API, websockets) ---------------------------------------------------


def top(window: str, limit: int) -> tuple[list[LeaderboardEntry], int]:
    """The top ``limit`` of a window's current board, and the board's seq."""
    r = client()
    key = board_key(window)
    return _call(lambda: _top(r, key, limit)), int(_call(lambda: r.get(key + ":seq")) or 0)


def around(window: str, player_id: str, k: int) -> tuple[LeaderboardEntry | None, list[LeaderboardEntry]]:
    """A player's entry and the ``k`` players either side of them."""
    r = client()
    key = board_key(window)
    me = _call(lambda: _entry(r, key, player_id))
    if me is None:
        return None, []
    start = max(0, me.rank - 1 - k)
    members = _call(lambda: r.zrevrange(key, start, me.rank - 1 + k))
    return me, _entries(r, members, first_rank=start + 1)


def entry(window: str, player_id: str) -> LeaderboardEntry | None:
    r = client()
    return _call(lambda: _entry(r, board_key(window), player_id))


def _top(r, key: str, n: int) -> list[LeaderboardEntry]:
    return _entries(r, r.zrevrange(key, 0, n - 1), first_rank=1)


def _entry(r, key: str, player_id: str) -> LeaderboardEntry | None:
    member = r.hget(key + ":members", player_id)
    if member is None:
        return None
    rank = r.zrevrank(key, member)
    if rank is None:
        return None
    total, _ = rank_member_parse(member)
    return LeaderboardEntry(rank + 1, player_id, _names(r, [player_id]).get(player_id, player_id), total)


def _entries(r, members: list[str], *, first_rank: int) -> list[LeaderboardEntry]:
    parsed = [rank_member_parse(m) for m in members]
    names = _names(r, [p for _, p in parsed])
    return [LeaderboardEntry(first_rank + i, p, names.get(p, p), total) for i, (total, p) in enumerate(parsed)]


def _names(r, player_ids: list[str]) -> dict[str, str]:
    if not player_ids:
        return {}
    return {p: n for p, n in zip(player_ids, r.hmget("lb:names", player_ids), strict=True) if n is not None}
