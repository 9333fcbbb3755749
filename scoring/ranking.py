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

import bisect
import contextlib
import functools
import itertools
import json
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

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

# One batch on one board, atomically, in one round trip. KEYS: board zset,
# members hash, versions hash, seq, epoch. ARGV: top N, ttl, notify limit,
# a new epoch (kept if the board has none), then (player, member, version)
# per player. Returns JSON: the board's seq, its
# top N before and after, every player whose update applied as [player, old
# member or false, new member, old rank or false, new rank] (ranks 0-based,
# the old one from before any update of the batch), and, per mover, the
# members it passed or that passed it (up to the notify limit, nearest
# first) with the rank of the first. Members compare byte by byte, as Redis
# orders them (memcmp): Lua's own ``<`` follows the server's locale.
_BATCH = """
local function before_in_bytes(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return la < lb
end
local zkey, mkey, vkey, skey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n, ttl, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local before = redis.call('ZREVRANGE', zkey, 0, n - 1)
local movers = {}
for i = 5, #ARGV, 3 do
  local p, m, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local cur = redis.call('HGET', vkey, p)
  if not cur or tonumber(cur) < tonumber(v) then
    local old = redis.call('HGET', mkey, p)
    local old_rank = false
    if old then old_rank = redis.call('ZREVRANK', zkey, old) or false end
    movers[#movers + 1] = {p, old or false, m, old_rank, v}
  end
end
if #movers == 0 then return cjson.encode({seq = false}) end
for _, mv in ipairs(movers) do
  if mv[2] then redis.call('ZREM', zkey, mv[2]) end
  redis.call('ZADD', zkey, 0, mv[3])
  redis.call('HSET', mkey, mv[1], mv[3])
  redis.call('HSET', vkey, mv[1], mv[5])
end
local seq = redis.call('INCR', skey)
redis.call('SET', KEYS[5], ARGV[4], 'NX')
if ttl > 0 then
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
end
local applied, ranges = {}, {}
for _, mv in ipairs(movers) do
  local rank = redis.call('ZREVRANK', zkey, mv[3])
  applied[#applied + 1] = {mv[1], mv[2], mv[3], mv[4], rank}
  local hi, lo = nil, nil
  if not mv[2] then hi, lo = '(' .. mv[3], '-'
  elseif before_in_bytes(mv[2], mv[3]) then hi, lo = '(' .. mv[3], '(' .. mv[2]
  elseif before_in_bytes(mv[3], mv[2]) then hi, lo = '(' .. mv[2], '(' .. mv[3] end
  if hi and limit > 0 then
    local between = redis.call('ZREVRANGEBYLEX', zkey, hi, lo, 'LIMIT', 0, limit)
    if #between > 0 then
      ranges[#ranges + 1] = {mv[1], redis.call('ZREVRANK', zkey, between[1]), between}
    end
  end
end
return cjson.encode({seq = seq, before = before, after = redis.call('ZREVRANGE', zkey, 0, n - 1),
                     applied = applied, ranges = ranges})
"""

# A rebuild's bulk load: the same version check per player, no ranks, and a
# handful of commands per chunk rather than five per player (the per-player
# calls were two thirds of a 1M rebuild). KEYS: board zset, members hash,
# versions hash, seq, epoch. ARGV: ttl, a new epoch, then (player, member,
# version) per player. Returns how many applied. A player twice in a chunk
# keeps the higher version. Lua's unpack takes at most ~8,000 values, so the
# variadic calls go in slices.
_LOAD = """
local zkey, mkey, vkey = KEYS[1], KEYS[2], KEYS[3]
local function call_sliced(cmd, key, values, width)
  local step = 1000 * width
  for s = 1, #values, step do
    redis.call(cmd, key, unpack(values, s, math.min(s + step - 1, #values)))
  end
end
local players, at = {}, {}
for i = 3, #ARGV, 3 do
  local p = ARGV[i]
  if not at[p] then players[#players + 1] = p; at[p] = i
  elseif tonumber(ARGV[at[p] + 2]) < tonumber(ARGV[i + 2]) then at[p] = i end
end
local cur, old = {}, {}
for s = 1, #players, 1000 do
  local slice = {unpack(players, s, math.min(s + 999, #players))}
  local c = redis.call('HMGET', vkey, unpack(slice))
  local o = redis.call('HMGET', mkey, unpack(slice))
  for j = 1, #slice do cur[s + j - 1] = c[j]; old[s + j - 1] = o[j] end
end
local zrem, zadd, members, versions = {}, {}, {}, {}
for j, p in ipairs(players) do
  local i = at[p]
  if not cur[j] or tonumber(cur[j]) < tonumber(ARGV[i + 2]) then
    if old[j] then zrem[#zrem + 1] = old[j] end
    zadd[#zadd + 1] = 0; zadd[#zadd + 1] = ARGV[i + 1]
    members[#members + 1] = p; members[#members + 1] = ARGV[i + 1]
    versions[#versions + 1] = p; versions[#versions + 1] = ARGV[i + 2]
  end
end
call_sliced('ZREM', zkey, zrem, 1)
call_sliced('ZADD', zkey, zadd, 2)
call_sliced('HSET', mkey, members, 2)
call_sliced('HSET', vkey, versions, 2)
local applied = #versions / 2
if applied > 0 then redis.call('INCR', KEYS[4]) end
redis.call('SET', KEYS[5], ARGV[2], 'NX')
if tonumber(ARGV[1]) > 0 then
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return applied
"""

# A player's entry and neighbours in one round trip. KEYS: board zset,
# members hash. ARGV: player, k. Returns false, or [rank (0-based), first
# rank, members from k above to k below].
_AROUND = """
local m = redis.call('HGET', KEYS[2], ARGV[1])
if not m then return false end
local rank = redis.call('ZREVRANK', KEYS[1], m)
if not rank then return false end
local k = tonumber(ARGV[2])
local first = math.max(0, rank - k)
return {rank, first, redis.call('ZREVRANGE', KEYS[1], first, rank + k)}
"""


class RankingUnavailable(Exception):
    """Redis is not configured or not reachable."""


@dataclass(slots=True)
class BoardChange:
    """What one batch did to one board: for one coalesced push."""

    window: str
    seq: int
    board: str = ""  # board_id: a new period's board starts its seq again
    changes: list[LeaderboardEntry] = field(default_factory=list)
    joined: list[LeaderboardEntry] = field(default_factory=list)
    left: list[dict] = field(default_factory=list)
    top: list[LeaderboardEntry] = field(default_factory=list)
    rank_changes: list["RankChange"] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RankChange:
    """One player's new place on one board after a batch, and who they
    passed or were passed by in it: one ``rank.change`` message."""

    window: str
    player_id: str
    rank: int
    previous_rank: int | None  # None: not on the board before
    passed: list[dict]
    passed_by: list[dict]
    entered_top: int | None = None  # N, if the batch took them into the top N
    left_top: int | None = None  # N, if it took them out of it

    def as_message(self) -> dict:
        return {"type": "rank.change", "window": self.window, "rank": self.rank,
                "previous_rank": self.previous_rank, "passed": self.passed, "passed_by": self.passed_by,
                "entered_top": self.entered_top, "left_top": self.left_top}


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


def board_id(window: str, now: datetime | None = None) -> str:
    """Which board is a window's current one: "all", "day:2026-12-08",
    "week:2026-W50". Ids of one window sort in time order."""
    return board_key(window, now).removeprefix("lb:")


def _call(fn):
    try:
        return fn()
    except redis.RedisError as exc:
        raise RankingUnavailable(str(exc)) from exc


def size() -> int:
    return settings.LEADERBOARD_SIZE


# Held while the boards are rebuilt (cleared, then loaded): see rebuild_lock.
_REBUILD_LOCK = "lb:rebuild"


# --- writes (the consumer) ------------------------------------------------------

def boards_update(totals: list[PlayerTotal], *, now: datetime | None = None) -> list[BoardChange]:
    """Put these totals on the current boards; return what changed, per board
    (nothing while the boards are being rebuilt).

    Two round trips to Redis whatever the number of players: one pipeline
    of the names and one script call per board (``_BATCH``), then the names
    of the players the changes mention. Raises RankingUnavailable, never a
    raw Redis error: callers decide what an unavailable read model means
    for them.
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
    script = _script(r, _BATCH)
    pipe = r.pipeline(transaction=False)
    pipe.hset("lb:names", mapping={t.player_id: t.player_name for t in totals})
    windows = []
    for window in WINDOWS:
        key = board_key(window, now)
        args = _member_args(totals, window, key)
        if args:
            script(keys=_keys(key), args=[n, _TTL[window], settings.RANK_CHANGE_NOTIFY_LIMIT, uuid.uuid4().hex,
                                          *args], client=pipe)
            windows.append((window, key.removeprefix("lb:")))
    # Read after the updates, in the same round trip: a rebuild that began
    # before them has cleared the boards and loaded them part-way. The
    # updates stand (version-checked, the load never undoes them), but ranks
    # read from such a board are wrong ("you entered the top 10"): nothing
    # to tell, until the rebuild announces its boards.
    pipe.exists(_REBUILD_LOCK)
    *raws, rebuilding = pipe.execute()[1:]
    if rebuilding:
        return []
    results = [json.loads(raw) for raw in raws]
    names = {t.player_id: t.player_name for t in totals}
    wanted = set()
    for result in results:
        if result["seq"]:
            members = [*_list(result["before"]), *_list(result["after"])]
            members += [m for _, _, between in _list(result["ranges"]) for m in between]
            wanted.update(rank_member_parse(m)[1] for m in members)
    names.update(_names(r, sorted(wanted - names.keys())))
    # Only boards where an update applied have anything to say; every other
    # update was older than what its board holds.
    return [_board_change(w, board, result, names, n)
            for (w, board), result in zip(windows, results, strict=True) if result["seq"]]


def _member_args(totals: list[PlayerTotal], window: str, key: str) -> list:
    args = []
    for total in totals:
        value = total.total if window == "all" else total.windows.get(key.removeprefix("lb:"), 0)
        if value > 0:
            args += [total.player_id, rank_member(total=value, reached_at_ms=total.reached_at_ms,
                                                  player_id=total.player_id), total.version]
    return args


def _keys(key: str) -> list[str]:
    """A board's keys: its zset, members and versions hashes, seq and epoch.
    The seq counts its changes; the epoch is a random id the board gets with
    its first write, so that a board lost (a Redis flush or restart) and
    written again is never taken for the old one at the same seq."""
    return [key, key + ":members", key + ":versions", key + ":seq", key + ":epoch"]


def _list(value) -> list:
    # Lua's cjson encodes an empty table as {}.
    return value or []


def _board_change(window: str, board: str, result: dict, names: dict[str, str], n: int) -> BoardChange:
    def entry(rank: int, member: str) -> LeaderboardEntry:
        total, player_id = rank_member_parse(member)
        return LeaderboardEntry(rank, player_id, names.get(player_id, player_id), total)

    before = [rank_member_parse(m)[1] for m in _list(result["before"])]
    top = [entry(i + 1, m) for i, m in enumerate(_list(result["after"]))]
    after = {e.player_id for e in top}
    applied = [Mover(p, old or "", new, None if old_rank is False else old_rank + 1, rank + 1)
               for p, old, new, old_rank, rank in _list(result["applied"])]
    return BoardChange(
        window=window, seq=result["seq"], board=board, top=top,
        changes=[entry(m.rank, m.member) for m in applied],
        joined=[e for e in top if e.player_id not in before],
        left=[{"player_id": p, "player": names.get(p, p)} for p in before if p not in after],
        rank_changes=_rank_changes(window, applied, _list(result["ranges"]), names, n),
    )


@dataclass(slots=True)
class Mover:
    """A player on a board, before and after a batch. ``old`` is "" (below
    every member) for one not on the board before it."""

    player_id: str
    old: str
    member: str
    previous_rank: int | None
    rank: int
    passed: list["Mover"] = field(default_factory=list)
    passed_by: list["Mover"] = field(default_factory=list)


def _rank_changes(window: str, movers: list[Mover], ranges: list, names: dict[str, str], n: int) -> list[RankChange]:
    """Who passed whom in a batch, for the players whose rank it changed.

    Members sort as the board does (higher is better; Python compares str
    by code point, which is UTF-8's byte order, which is Redis's). A mover
    M passed X if M was behind X before the batch and is ahead of X after
    it. Between movers, a sweep down the new order finds that; the others
    involved are the players between a mover's old and new place, which
    the script listed (up to the notify limit per mover, nearest first),
    and every mover is checked against every one of them, so each message
    sent is exact. A player not listed is told nothing.
    """
    moving = {m.player_id for m in movers}
    others: dict[str, Mover] = {}
    for _, first, between in ranges:
        for i, member in enumerate(between):
            player_id = rank_member_parse(member)[1]
            if player_id not in moving and player_id not in others:
                others[player_id] = Mover(player_id, member, member, None, first + 1 + i)
    # Movers among themselves: walking down the new order, those already
    # seen are ahead now; the ones among them that were behind before passed.
    ahead_old: list[str] = []  # their old members, sorted, each once
    by_old: dict[str, list[Mover]] = {}
    for m in sorted(movers, key=lambda m: m.member, reverse=True):
        for old in ahead_old[: bisect.bisect_left(ahead_old, m.old)]:
            for p in by_old[old]:
                p.passed.append(m)
                m.passed_by.append(p)
        if m.old not in by_old:
            bisect.insort(ahead_old, m.old)
        by_old.setdefault(m.old, []).append(m)
    # Movers and the players they went past, who kept their place.
    still = sorted(others.values(), key=lambda o: o.member)
    keys = [o.member for o in still]
    for m in movers:
        low, high = sorted((m.old, m.member))
        for o in still[bisect.bisect_right(keys, low): bisect.bisect_left(keys, high)]:
            if m.old < m.member:
                m.passed.append(o)
                o.passed_by.append(m)
            else:
                o.passed.append(m)
                m.passed_by.append(o)
    for o in others.values():
        o.previous_rank = o.rank - len(o.passed_by) + len(o.passed)

    def players(group: list[Mover]) -> list[dict]:
        return [{"player_id": p.player_id, "player": names.get(p.player_id, p.player_id)}
                for p in sorted(group, key=lambda p: p.rank)]

    changes = []
    for p in [*movers, *others.values()]:
        if p.previous_rank == p.rank:
            continue
        was_in = p.previous_rank is not None and p.previous_rank <= n
        changes.append(RankChange(window, p.player_id, p.rank, p.previous_rank, players(p.passed),
                                  players(p.passed_by), entered_top=n if p.rank <= n and not was_in else None,
                                  left_top=n if was_in and p.rank > n else None))
    return changes


@contextlib.contextmanager
def rebuild_lock(*, timeout: float = 600.0):
    """Yields True if this process may rebuild the boards now, False if
    another one holds the lock. Expires after ``timeout`` seconds, so a
    process that dies mid-rebuild cannot block the next one for good."""
    lock = client().lock(_REBUILD_LOCK, timeout=timeout, blocking=False)
    held = _call(lock.acquire)
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(redis.RedisError):
                lock.release()


REBUILD_CHUNK = 2000


def _execute_counting(pipe, count: int) -> int:
    pipe.execute()
    return count


def boards_rebuild(totals: Iterable[PlayerTotal], *, now: datetime | None = None,
                   progress: Callable[[int], None] | None = None) -> int:
    """Replace the current boards with these totals (from DynamoDB): clear
    them, then load the totals in chunks, one pipelined round trip per
    chunk (``_LOAD`` per board, and the names). Each update keeps the
    version check, so a consumer updating the boards meanwhile is never
    undone by an older total. ``progress`` is told the count after every
    chunk. Returns how many totals were loaded."""
    now = now or utcnow()
    try:
        r = client()
        keys = {w: board_key(w, now) for w in WINDOWS}
        r.delete(*[k for key in keys.values() for k in _keys(key)[:3]])
        load = _script(r, _LOAD)
        count = 0
        # One chunk in flight while the next is built: Redis works on one
        # while this process turns the next into commands (on a 1M rebuild
        # the two take about as long as each other).
        with ThreadPoolExecutor(1, thread_name_prefix="boards-rebuild") as sender:
            in_flight = None
            for chunk in _chunks(totals, REBUILD_CHUNK):
                pipe = r.pipeline(transaction=False)
                pipe.hset("lb:names", mapping={t.player_id: t.player_name for t in chunk})
                for window, key in keys.items():
                    args = _member_args(chunk, window, key)
                    if args:
                        load(keys=_keys(key), args=[_TTL[window], uuid.uuid4().hex, *args], client=pipe)
                if in_flight:
                    count += in_flight.result()
                    if progress:
                        progress(count)
                in_flight = sender.submit(_execute_counting, pipe, len(chunk))
            if in_flight:
                count += in_flight.result()
                if progress:
                    progress(count)
        return count
    except redis.RedisError as exc:
        raise RankingUnavailable(str(exc)) from exc


# --- freshness and activity (the consumer writes, pages read) --------------------

_PIPELINE = "lb:pipeline"  # hash: lag_ms, as_of_ms (the last batch), heartbeat_ms (the last sign of a worker)
_ACTIVITY = "lb:activity"  # list: the latest applied completions, newest first
_PER_MINUTE = "lb:activity:min:"  # + epoch minute: completions applied in it
ACTIVITY_KEEP = 50
_PER_MINUTE_TTL = 3 * 3600


def iso(ms: int | None) -> str | None:
    """Epoch ms as ISO-8601 UTC, the way DRF renders datetimes."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pipeline_record(*, lag_ms: int, as_of_ms: int, activity: list[dict], applied: int) -> None:
    """What a batch tells the boards' viewers: its lag, when it was applied,
    its completions. One pipelined round trip."""
    def record():
        pipe = client().pipeline(transaction=False)
        pipe.hset(_PIPELINE, mapping={"lag_ms": lag_ms, "as_of_ms": as_of_ms, "heartbeat_ms": as_of_ms})
        if activity:
            pipe.lpush(_ACTIVITY, *[json.dumps(a) for a in reversed(activity)])
            pipe.ltrim(_ACTIVITY, 0, ACTIVITY_KEEP - 1)
        if applied:
            minute = _PER_MINUTE + str(as_of_ms // 60000)
            pipe.incrby(minute, applied)
            pipe.expire(minute, _PER_MINUTE_TTL)
        pipe.execute()

    _call(record)


def pipeline_heartbeat(*, at_ms: int) -> dict:
    """A worker is alive: record it, and return the state a heartbeat carries."""
    def beat():
        pipe = client().pipeline(transaction=False)
        pipe.hset(_PIPELINE, "heartbeat_ms", at_ms)
        pipe.hmget(_PIPELINE, ["lag_ms", "as_of_ms", "heartbeat_ms"])
        return pipe.execute()[1]

    return _pipeline_state(_call(beat))


def pipeline_state() -> dict:
    """``{"pipeline": {"lag_ms", "as_of"}, "heartbeat_at"}``: the last
    batch's lag and moment, and the last sign of a worker (None: none yet)."""
    return _pipeline_state(_call(lambda: client().hmget(_PIPELINE, ["lag_ms", "as_of_ms", "heartbeat_ms"])))


def _pipeline_state(values: list) -> dict:
    lag, as_of, heartbeat = (int(v) if v is not None else None for v in values)
    return {"pipeline": {"lag_ms": lag, "as_of": iso(as_of)}, "heartbeat_at": iso(heartbeat)}


def activity_recent(limit: int = 20) -> list[dict]:
    """The latest applied completions, newest first:
    ``{"player_id", "player", "task", "task_title", "points", "at"}``."""
    return [json.loads(a) for a in _call(lambda: client().lrange(_ACTIVITY, 0, limit - 1))]


def activity_per_minute(minutes: int = 60, *, now: datetime | None = None) -> list[dict]:
    """Completions applied per minute over the last ``minutes`` (this one
    included), oldest first: ``{"minute": ISO, "count"}``."""
    last = int((now or utcnow()).timestamp()) // 60
    wanted = list(range(last - minutes + 1, last + 1))
    counts = _call(lambda: client().mget([_PER_MINUTE + str(m) for m in wanted]))
    return [{"minute": iso(m * 60000), "count": int(c or 0)} for m, c in zip(wanted, counts, strict=True)]


def _chunks(items: Iterable, n: int):
    it = iter(items)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


# --- reads (API, websockets) ---------------------------------------------------

# The top of each board, as last read, keyed by the board's epoch and seq:
# every update bumps the seq, so an entry is exact while both are the same.
_TOP_CACHE: dict[str, tuple[tuple, int, list[LeaderboardEntry]]] = {}
_TOP_CACHE_BOARDS = 16


def top(window: str, limit: int, *, now: datetime | None = None) -> tuple[list[LeaderboardEntry], int]:
    """The top ``limit`` of a window's current board (at ``now``), and the board's seq.

    One GET when this process has read that board at this seq before. The
    seq is read first: entries read after it are at least that new, and a
    board that changed meanwhile has a higher seq, which misses next time.
    """
    r = client()
    key = board_key(window, now)
    seq, epoch = _call(lambda: r.mget(key + ":seq", key + ":epoch"))
    version = (epoch, int(seq or 0))
    cached = _TOP_CACHE.get(key)
    if cached and cached[0] == version and cached[1] >= limit:
        return cached[2][:limit], version[1]
    entries = _call(lambda: _top(r, key, limit))
    if len(_TOP_CACHE) >= _TOP_CACHE_BOARDS and key not in _TOP_CACHE:
        _TOP_CACHE.pop(next(iter(_TOP_CACHE)))
    _TOP_CACHE[key] = (version, limit, entries)
    return entries, version[1]


def around(window: str, player_id: str, k: int, *,
           now: datetime | None = None) -> tuple[LeaderboardEntry | None, list[LeaderboardEntry]]:
    """A player's entry and the ``k`` players either side of them."""
    r = client()
    return _call(lambda: _around(r, board_key(window, now), player_id, k))


def entry(window: str, player_id: str, *, now: datetime | None = None) -> LeaderboardEntry | None:
    return around(window, player_id, 0, now=now)[0]


def _top(r, key: str, n: int) -> list[LeaderboardEntry]:
    return _entries(r, r.zrevrange(key, 0, n - 1), first_rank=1)


def _around(r, key: str, player_id: str, k: int) -> tuple[LeaderboardEntry | None, list[LeaderboardEntry]]:
    """Two round trips: one script call, one read of the names."""
    found = _script(r, _AROUND)(keys=[key, key + ":members"], args=[player_id, k])
    if not found:
        return None, []
    _, first, members = found
    near = _entries(r, members, first_rank=first + 1)
    return next((e for e in near if e.player_id == player_id), None), near


def _entry(r, key: str, player_id: str) -> LeaderboardEntry | None:
    return _around(r, key, player_id, 0)[0]


def _entries(r, members: list[str], *, first_rank: int) -> list[LeaderboardEntry]:
    parsed = [rank_member_parse(m) for m in members]
    names = _names(r, [p for _, p in parsed])
    return [LeaderboardEntry(first_rank + i, p, names.get(p, p), total) for i, (total, p) in enumerate(parsed)]


def _names(r, player_ids: list[str]) -> dict[str, str]:
    if not player_ids:
        return {}
    return {p: n for p, n in zip(player_ids, r.hmget("lb:names", player_ids), strict=True) if n is not None}


@functools.lru_cache(maxsize=16)
def _script(r, source: str):
    """A registered script: EVALSHA, loaded again after a Redis restart."""
    return r.register_script(source)
