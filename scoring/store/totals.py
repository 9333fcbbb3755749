"""TOTAL items: each player's total, written only by the stream processor,
and the marker left when the Redis boards missed an update."""

from collections.abc import Callable, Iterator
from typing import TypeVar

from django.conf import settings

from scoring.domain import PlayerTotal
from scoring.store.base import StoreUnavailable, call, call_if, items_get_many, scan_client, scan_parallel, table_name
from scoring.store.keys import (
    PLAYER_PREFIX,
    BoardsStale,
    boards_stale_from_item,
    boards_stale_key,
    total_from_item,
    total_key,
    total_to_item,
)

T = TypeVar("T")

# How many times a TOTAL write may lose the version race before the caller
# gives up (StoreUnavailable) and its batch is retried as a whole.
MAX_TOTAL_CONFLICTS = 20

_UNREAD = object()


def totals_get_many(*, player_ids: list[str]) -> dict[str, PlayerTotal]:
    """The current TOTAL items for these players (missing ones are left out)."""
    items = items_get_many([total_key(p) for p in dict.fromkeys(player_ids)])
    return {t.player_id: t for t in map(total_from_item, items)}


def total_put_if_version(*, total: PlayerTotal, expected_version: int) -> bool:
    """Write a TOTAL item if nobody changed it since ``expected_version``
    (0: if there is none yet).

    Returns False when someone did (another worker, or a replay that got
    there first); the caller re-reads and folds again.
    """
    condition = "attribute_not_exists(PK)" if expected_version == 0 else "version = :v"
    kwargs = {"ExpressionAttributeValues": {":v": {"N": str(expected_version)}}} if expected_version else {}
    return call_if("put_item", TableName=table_name(), Item=total_to_item(total), ConditionExpression=condition,
                   **kwargs)


def total_change(*, player_id: str, change: Callable[[PlayerTotal | None, bool], tuple[PlayerTotal | None, T]],
                 current: PlayerTotal | None | object = _UNREAD) -> T:
    """Change a player's TOTAL under its version, retrying lost races.

    ``change(current, retrying)`` returns the TOTAL to write (None: nothing
    to write) and what to return once it is written. ``current`` is the
    TOTAL as the caller already read it, if it did; after a lost race it is
    read again and ``change`` called with ``retrying=True``. The one loop
    every TOTAL write goes through: the batch fold and dead-lettering.
    """
    for attempt in range(MAX_TOTAL_CONFLICTS):
        if attempt or current is _UNREAD:
            current = totals_get_many(player_ids=[player_id]).get(player_id)
        new, result = change(current, attempt > 0)
        if new is None or total_put_if_version(total=new, expected_version=current.version if current else 0):
            return result
        # Someone else wrote this TOTAL since we read it: another worker on
        # another shard, or a duplicate of this batch. Read again and redo.
    raise StoreUnavailable(f"TOTAL for player {player_id} kept changing under us")


def totals_scan(*, segments: int | None = None, consistent: bool = False,
                progress: Callable[[int], None] | None = None) -> Iterator[PlayerTotal]:
    """Every TOTAL item, in no particular order: a parallel Scan of
    ``segments`` segments (settings.TOTALS_SCAN_SEGMENTS unless given).
    ``consistent`` reads each TOTAL as last written (ConsistentRead, twice
    the read units), not as it was up to a second or so earlier.
    ``progress`` is told how many were read so far after every page, in
    the caller's thread."""
    read = 0
    for items in scan_parallel(segments=segments or settings.TOTALS_SCAN_SEGMENTS, client=scan_client(),
                               TableName=table_name(), FilterExpression="begins_with(PK, :p) AND SK = :sk",
                               ExpressionAttributeValues={":p": {"S": PLAYER_PREFIX}, ":sk": {"S": "TOTAL"}},
                               ConsistentRead=consistent):
        for item in items:
            yield total_from_item(item)
        read += len(items)
        if progress:
            progress(read)


# --- the boards-stale marker (see scoring/live.py) ------------------------


def boards_stale_mark(*, now_ms: int) -> BoardsStale:
    """Record that the Redis boards missed an update now, and return the
    marker as this left it. The first miss's moment is kept; the count
    tells a heal whether another miss came since."""
    item = call("update_item", TableName=table_name(), Key=boards_stale_key(),
                UpdateExpression="SET #type = :type, since_ms = if_not_exists(since_ms, :now) ADD misses :one",
                ExpressionAttributeNames={"#type": "type"},
                ExpressionAttributeValues={":type": {"S": "BOARDS_STALE"}, ":now": {"N": str(now_ms)},
                                           ":one": {"N": "1"}},
                ReturnValues="ALL_NEW")["Attributes"]
    return boards_stale_from_item(item)


def boards_stale_get() -> BoardsStale | None:
    """The marker, if the boards are stale; else None."""
    item = call("get_item", TableName=table_name(), Key=boards_stale_key(), ConsistentRead=True).get("Item")
    return boards_stale_from_item(item) if item else None


def boards_stale_clear(*, seen: BoardsStale) -> bool:
    """Drop the marker after a heal that started after reading ``seen``,
    unless another miss was marked since (then the heal may have missed it
    too, and the marker stays for the next one). False if it stays."""
    return call_if("delete_item", TableName=table_name(), Key=boards_stale_key(),
                   ConditionExpression="misses = :seen", ExpressionAttributeValues={":seen": {"N": str(seen.misses)}})
