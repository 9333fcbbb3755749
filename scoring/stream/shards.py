"""Shards and their lineage: which shards may be read, and from where.

As AWS documents for DynamoDB Streams: shards form a tree through
``ParentShardId``; a parent is read to its end before its children; a
closed shard drained to its end is retired; a parent that left
DescribeStream (24 h after it closed) no longer holds its children back.
Pure functions of what DescribeStream and the checkpoints say.
"""

from scoring.store import Shard


def ready_shards(shards: dict[str, Shard], retired: set[str]) -> list[str]:
    """Shards that may be read now: not retired, and whose parent is
    retired or gone (trimmed past retention). Parents before children."""
    ready = []
    for shard_id, shard in shards.items():
        if shard_id in retired:
            continue
        parent = shard.parent_id
        if parent and parent in shards and parent not in retired:
            continue
        ready.append(shard_id)
    return ready


def gone_parents(shards: dict[str, Shard]) -> set[str]:
    """Parents named by a listed shard but no longer listed themselves."""
    return {s.parent_id for s in shards.values() if s.parent_id and s.parent_id not in shards}


def start_position(shard: Shard | None, starting_position: str) -> str:
    """Where to start a shard with no checkpoint. LATEST applies only to
    shards open when we first looked; a child shard found later always
    starts at its beginning, or records would fall between parent and child."""
    if starting_position == "LATEST" and shard and not shard.parent_id and not shard.closed:
        return "LATEST"
    return "TRIM_HORIZON"
