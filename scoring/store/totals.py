"""TOTAL items: each player's total, written only by the stream consumer."""

import dataclasses
from collections.abc import Iterator

from scoring.domain import LeaderboardEntry, PlayerTotal
from scoring.store.base import StoreUnavailable, call, call_if, client, items_get_many, table_name
from scoring.store.keys import (
    GSI_LEADERBOARD,
    LEADERBOARD_PK,
    PLAYER_PREFIX,
    from_item,
    leaderboard_sort_key,
    to_item,
    total_from_item,
    total_key,
)


def totals_get_many(*, player_ids: list[str]) -> dict[str, PlayerTotal]:
    """The current TOTAL items for these players (missing ones are left out)."""
    items = items_get_many([total_key(p) for p in dict.fromkeys(player_ids)])
    return {t.player_id: t for t in map(total_from_item, items)}


# How many times a TOTAL write may lose the version race before the caller
# gives up (StoreUnavailable) and its batch is retried as a whole.
MAX_TOTAL_CONFLICTS = 20


def total_put_if_version(*, total: PlayerTotal, expected_version: int) -> bool:
    """Write a TOTAL item if nobody changed it since ``expected_version``.

    Returns False when someone did (another worker, or a replay that got
    there first); the caller re-reads and folds again.
    """
    item = {
        **total_key(total.player_id),
        **to_item(
            {
                "type": "TOTAL",
                "player_id": total.player_id,
                "player_name": total.player_name,
                "total": total.total,
                "version": total.version,
                "reached_at_ms": total.reached_at_ms,
            }
        ),
        # An empty map must still be written: TypeSerializer turns {} into {"M": {}}.
        "pending": {"M": {k: {"N": str(v)} for k, v in total.pending.items()}},
        "rejected": {"M": {k: {"S": v} for k, v in total.rejected.items()}},
        "windows": {"M": {k: {"N": str(v)} for k, v in total.windows.items()}},
    }
    if total.on_leaderboard:  # a sparse index: a player with nothing applied yet has no rank
        item["GSI1PK"] = {"S": LEADERBOARD_PK}
        item["GSI1SK"] = {"S": leaderboard_sort_key(total=total.total, reached_at_ms=total.reached_at_ms)}
    condition = "attribute_not_exists(PK)" if expected_version == 0 else "version = :v"
    kwargs = {"ExpressionAttributeValues": {":v": {"N": str(expected_version)}}} if expected_version else {}
    return call_if("put_item", TableName=table_name(), Item=item, ConditionExpression=condition, **kwargs)


def total_commit_rejection(*, player_id: str, player_name: str, submission_id: str,
                           error: str) -> tuple[int | None, str | None]:
    """Commit a rejection of this submission in the player's TOTAL, under the
    version check, unless the TOTAL already holds a decision for it; return
    the decision that stands: ``(points, None)`` applied, ``(None, error)``
    rejected. What dead-lettering settles with, so that it agrees with a
    worker that committed the same submission meanwhile."""
    for _ in range(MAX_TOTAL_CONFLICTS):
        total = totals_get_many(player_ids=[player_id]).get(player_id)
        if total is not None and submission_id in total.pending:
            return total.pending[submission_id], None
        if total is not None and submission_id in total.rejected:
            return None, total.rejected[submission_id]
        base = total or PlayerTotal(player_id=player_id, player_name=player_name, on_leaderboard=False)
        new = dataclasses.replace(base, version=base.version + 1, rejected={**base.rejected, submission_id: error})
        if total_put_if_version(total=new, expected_version=base.version):
            return None, error
    raise StoreUnavailable(f"TOTAL for player {player_id} kept changing under us")


def totals_scan() -> Iterator[PlayerTotal]:
    """Every TOTAL item."""
    paginator = client().get_paginator("scan")
    for page in paginator.paginate(
        TableName=table_name(),
        FilterExpression="begins_with(PK, :p) AND SK = :sk",
        ExpressionAttributeValues={":p": {"S": PLAYER_PREFIX}, ":sk": {"S": "TOTAL"}},
    ):
        for item in page.get("Items", []):
            yield total_from_item(item)


def leaderboard_top(*, limit: int) -> list[LeaderboardEntry]:
    """The top ``limit`` TOTAL items, best first."""
    response = call(
        "query",
        TableName=table_name(),
        IndexName=GSI_LEADERBOARD,
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": LEADERBOARD_PK}},
        ScanIndexForward=False,
        Limit=limit,
    )
    entries = []
    for rank, item in enumerate(response.get("Items", []), start=1):
        attrs = from_item(item)
        entries.append(
            LeaderboardEntry(
                rank=rank,
                player_id=attrs["player_id"],
                player_name=attrs["player_name"],
                total=attrs["total"],
            )
        )
    return entries

