"""The leaderboard index (GSI1): the top N from its shards, and moving
TOTAL items into their shards (``migrate_leaderboard_index``).

Every listed TOTAL is in partition ``LEADERBOARD#<shard>`` of the index,
its player's stable hash modulo settings.LEADERBOARD_INDEX_SHARDS, so the
index takes that many times one partition's writes. The Redis boards serve
reads; this is the all-time board while Redis is down (selectors).
"""

import contextlib
import functools
import heapq
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from django.conf import settings

from scoring.domain import LeaderboardEntry
from scoring.store.base import call, call_if, scan_client, scan_parallel, table_name
from scoring.store.keys import (
    GSI_LEADERBOARD,
    LEADERBOARD_PROJECTION,
    PLAYER_PREFIX,
    leaderboard_entry_from_item,
    leaderboard_index_move,
    leaderboard_item_version,
    leaderboard_order,
    leaderboard_partitions,
    total_key,
)


@functools.lru_cache(maxsize=1)
def _shard_pool() -> ThreadPoolExecutor:
    """Threads for the shards' Queries, shared by a process's requests (one
    pool, built on first use, not one per read)."""
    return ThreadPoolExecutor(max_workers=32, thread_name_prefix="leaderboard-shard")


def leaderboard_top(*, limit: int, shards: int | None = None) -> list[LeaderboardEntry]:
    """The top ``limit`` listed TOTALs, best first: each partition's top
    ``limit`` (a Query, descending, in parallel), merged. Every shard of
    ``shards`` (settings.LEADERBOARD_INDEX_SHARDS unless given) and the
    unsharded partition of a table not yet migrated."""
    partitions = leaderboard_partitions(shards=shards or settings.LEADERBOARD_INDEX_SHARDS)
    newest: dict[str, tuple[int, dict]] = {}
    for items in _shard_pool().map(functools.partial(_partition_top, limit=limit), partitions):
        for item in items:
            player_id, version = leaderboard_item_version(item)
            if player_id not in newest or version > newest[player_id][0]:
                newest[player_id] = (version, item)
    best = heapq.nlargest(limit, (item for _, item in newest.values()), key=leaderboard_order)
    return [leaderboard_entry_from_item(item, rank=rank) for rank, item in enumerate(best, start=1)]


def _partition_top(partition: str, *, limit: int) -> list[dict]:
    """One partition's top ``limit`` items. A page stops at 1 MB, so a big
    ``limit`` may take more than one."""
    kwargs = {"TableName": table_name(), "IndexName": GSI_LEADERBOARD, "KeyConditionExpression": "GSI1PK = :pk",
              "ExpressionAttributeValues": {":pk": {"S": partition}}, "ScanIndexForward": False,
              "ProjectionExpression": ", ".join(LEADERBOARD_PROJECTION),
              "ExpressionAttributeNames": LEADERBOARD_PROJECTION}
    items: list[dict] = []
    while True:
        response = call("query", Limit=limit - len(items), **kwargs)
        items += response.get("Items", [])
        if len(items) >= limit or not response.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


@dataclass(frozen=True, slots=True)
class IndexMigration:
    """How far a pass of ``leaderboard_index_migrate`` got."""

    shards: int
    dry_run: bool
    read: int = 0  # listed TOTAL items read
    moved: int = 0  # re-keyed into their shard (a dry run: would be)
    in_place: int = 0  # already in their shard
    # Rewritten by a consumer between the scan and the move (so already in
    # their shard, and newer than what was read): left alone.
    changed: int = 0


class _Pacer:
    """At most ``rate`` calls a second across threads (0: no limit)."""

    def __init__(self, rate: float):
        self.interval = 1 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            at = max(self.next_at, now)
            self.next_at = at + self.interval
        if at > now:
            time.sleep(at - now)


def leaderboard_index_migrate(*, shards: int | None = None, dry_run: bool = False, segments: int | None = None,
                              writers: int = 8, max_rate: float = 0,
                              progress: Callable[[IndexMigration], None] | None = None) -> IndexMigration:
    """Move every listed TOTAL into its shard of the index: from the
    unsharded ``LEADERBOARD`` partition, or from a shard of another count.

    A parallel Scan of the TOTAL items (``segments``), then one UpdateItem
    per item to move (``writers`` threads, at most ``max_rate`` a second),
    setting only ``GSI1PK``, on condition that it is still what the scan
    read. The totals, ``GSI1SK`` and ``version`` are left as they are: a
    consumer folding a batch meanwhile neither loses its write (its version
    check still holds) nor is undone by an older total, and a TOTAL it
    rewrote already keyed right fails the condition and is counted
    ``changed``. So it is safe while consumers run, and a second pass moves
    nothing. ``progress`` gets the counts after every page."""
    shards = shards or settings.LEADERBOARD_INDEX_SHARDS
    state = IndexMigration(shards=shards, dry_run=dry_run)
    pacer = _Pacer(max_rate)

    def move(found: tuple[str, str, str]) -> bool:
        player_id, stored, wanted = found
        pacer.wait()
        return call_if("update_item", TableName=table_name(), Key=total_key(player_id),
                       UpdateExpression="SET GSI1PK = :wanted", ConditionExpression="GSI1PK = :stored",
                       ExpressionAttributeValues={":wanted": {"S": wanted}, ":stored": {"S": stored}})

    pages = scan_parallel(segments=segments or settings.TOTALS_SCAN_SEGMENTS, client=scan_client(),
                          TableName=table_name(), ProjectionExpression="PK, player_id, GSI1PK",
                          FilterExpression="begins_with(PK, :p) AND SK = :sk AND attribute_exists(GSI1PK)",
                          ExpressionAttributeValues={":p": {"S": PLAYER_PREFIX}, ":sk": {"S": "TOTAL"}})
    with contextlib.closing(pages), ThreadPoolExecutor(max_workers=max(1, writers),
                                                       thread_name_prefix="leaderboard-move") as pool:
        for items in pages:
            moves = [m for m in (leaderboard_index_move(item, shards=shards) for item in items) if m]
            made = len(moves) if dry_run else sum(pool.map(move, moves))
            state = replace(state, read=state.read + len(items), moved=state.moved + made,
                            in_place=state.in_place + len(items) - len(moves),
                            changed=state.changed + len(moves) - made)
            if progress:
                progress(state)
    return state
