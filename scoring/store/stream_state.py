"""The stream reader's own items: checkpoints, leases, worker heartbeats,
dead letters.

All live in the scores table under keys that never begin with ``SCORE#``, so
writing them never feeds the processor's own filter. The reader's loop reads
them by key (GetItem, BatchGetItem); moto answers a Query by scanning the
whole table. What the items hold is mapped in ``keys``; when a lease counts
a death is decided in ``scoring/stream/leases.py``.
"""

import json
import time
from collections.abc import Callable, Iterator

from django.conf import settings

from scoring.store.base import StoreUnavailable, call, call_if, items_get_many, query_all, table_name
from scoring.store.keys import (
    CHECKPOINT_PREFIX,
    DLQ_PK,
    LEASE_PREFIX,
    PURGE_AT,
    STREAM_PK,
    Checkpoint,
    DeadLetter,
    Lease,
    checkpoint_from_item,
    checkpoint_to_item,
    dead_letter_from_item,
    dead_letter_to_item,
    lease_from_item,
    lease_to_item,
    shard_checkpoint_key,
    shard_lease_key,
    worker_key,
    worker_registry_attribute,
    worker_registry_expiries,
    worker_registry_key,
    worker_status_from_item,
    worker_to_item,
)

# A dead worker stays in the registry item this long, then the next read drops it.
_REGISTRY_KEEP_DEAD_MS = 3_600_000


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- checkpoints ----------------------------------------------------------


def checkpoint_get(*, shard_id: str) -> Checkpoint | None:
    item = call("get_item", TableName=table_name(), Key=shard_checkpoint_key(shard_id),
                ConsistentRead=True).get("Item")
    return checkpoint_from_item(item) if item else None


# How long the checkpoint and lease of a shard read to its end are kept:
# past the 24 h a closed shard stays listed in DescribeStream (a shard still
# listed without its checkpoint would be read again), then DynamoDB's TTL
# deletes them, so a table's years of rolled shards do not pile up.
CLOSED_SHARD_RETENTION_DAYS = 7


def _closed_purge_at() -> int:
    return _now_ms() // 1000 + CLOSED_SHARD_RETENTION_DAYS * 86400


def checkpoint_put(*, shard_id: str, sequence_number: str | None, closed: bool = False) -> None:
    """Record progress on a shard. Sequence numbers, never iterators: an
    iterator expires after 15 minutes, a sequence number does not. A closed
    shard's checkpoint expires (CLOSED_SHARD_RETENTION_DAYS)."""
    item = checkpoint_to_item(Checkpoint(shard_id, sequence_number, closed), updated_at_ms=_now_ms())
    if closed:
        item[PURGE_AT] = {"N": str(_closed_purge_at())}
    call("put_item", TableName=table_name(), Item=item)


def checkpoints_get_many(*, shard_ids: list[str]) -> dict[str, Checkpoint]:
    """Checkpoints of these shards, by key: cost O(shards), whatever the table holds."""
    items = items_get_many([shard_checkpoint_key(s) for s in shard_ids])
    return {c.shard_id: c for c in map(checkpoint_from_item, items)}


def checkpoints_all() -> dict[str, Checkpoint]:
    """Every checkpoint (ops and tests; a Query, see stream_items)."""
    return {c.shard_id: c for c in _items(CHECKPOINT_PREFIX, checkpoint_from_item)}


# --- leases ---------------------------------------------------------------


def lease_acquire(*, shard_id: str, owner: str, ttl_seconds: float, now_ms: int | None = None) -> bool:
    """Take or renew the shard's lease if it is free, expired, or ours.

    A conditional write: of two workers racing for a shard, exactly one wins.
    Workers' clocks are assumed to agree within a small part of the TTL.
    """
    now = now_ms if now_ms is not None else _now_ms()
    return call_if(
        "update_item",
        TableName=table_name(),
        Key=shard_lease_key(shard_id),
        UpdateExpression="SET #type = :type, shard_id = :shard, #owner = :me, expires_at_ms = :exp",
        ConditionExpression="attribute_not_exists(PK) OR #owner = :me OR expires_at_ms < :now",
        ExpressionAttributeNames={"#owner": "owner", "#type": "type"},
        ExpressionAttributeValues={":type": {"S": "LEASE"}, ":shard": {"S": shard_id}, ":me": {"S": owner},
                                   ":exp": {"N": str(now + int(ttl_seconds * 1000))}, ":now": {"N": str(now)}},
    )


def lease_replace(*, lease: Lease, seen: Lease | None, now_ms: int) -> bool:
    """Write ``lease`` over a lease that is free or expired, if it is still
    as ``seen`` (None: no lease item yet). False if another worker changed it
    first. Renewals go through lease_acquire."""
    if seen is None:
        condition, values = "attribute_not_exists(PK)", {}
    else:
        condition = "#owner = :seen_owner AND expires_at_ms = :seen_exp AND (#owner = :me OR expires_at_ms < :now)"
        values = {":seen_owner": {"S": seen.owner}, ":seen_exp": {"N": str(seen.expires_at_ms)},
                  ":me": {"S": lease.owner}, ":now": {"N": str(now_ms)}}
    return call_if("put_item", TableName=table_name(), Item=lease_to_item(lease), ConditionExpression=condition,
                   **({"ExpressionAttributeNames": {"#owner": "owner"}, "ExpressionAttributeValues": values}
                      if values else {}))


def lease_release(*, shard_id: str, owner: str, closed: bool = False) -> None:
    """Give the shard up at once (clean shutdown, or read to its end:
    ``closed``, and the lease expires as its checkpoint does), if it is
    still ours."""
    values = {":zero": {"N": "0"}, ":me": {"S": owner}}
    update = "SET expires_at_ms = :zero"
    if closed:
        update += f", {PURGE_AT} = :purge"
        values[":purge"] = {"N": str(_closed_purge_at())}
    call_if(
        "update_item",
        TableName=table_name(),
        Key=shard_lease_key(shard_id),
        UpdateExpression=update,
        ConditionExpression="#owner = :me",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues=values,
    )


def leases_get_many(*, shard_ids: list[str]) -> dict[str, Lease]:
    items = items_get_many([shard_lease_key(s) for s in shard_ids])
    return {lease.shard_id: lease for lease in map(lease_from_item, items)}


def leases_all() -> dict[str, Lease]:
    """Every lease (ops and tests; a Query, see stream_items)."""
    return {lease.shard_id: lease for lease in _items(LEASE_PREFIX, lease_from_item)}


# --- workers --------------------------------------------------------------


def worker_heartbeat(*, worker_id: str, ttl_seconds: float, status: dict, now_ms: int | None = None) -> None:
    """Announce a live worker: its expiry in the registry item (for fair lease
    shares) and its status in its own item (for the staff pipeline page),
    which DynamoDB's TTL deletes WORKER_RETENTION_HOURS after the last
    heartbeat."""
    now = now_ms if now_ms is not None else _now_ms()
    expires = now + int(ttl_seconds * 1000)
    call("update_item", TableName=table_name(), Key=worker_registry_key(),
         UpdateExpression="SET #w = :exp", ExpressionAttributeNames={"#w": worker_registry_attribute(worker_id)},
         ExpressionAttributeValues={":exp": {"N": str(expires)}})
    purge_at = now // 1000 + int(settings.WORKER_RETENTION_HOURS * 3600)
    call("put_item", TableName=table_name(), Item=worker_to_item(
        worker_id, heartbeat_ms=now, expires_at_ms=expires, status=status, purge_at=purge_at))


def worker_remove(*, worker_id: str) -> None:
    call("update_item", TableName=table_name(), Key=worker_registry_key(),
         UpdateExpression="REMOVE #w", ExpressionAttributeNames={"#w": worker_registry_attribute(worker_id)})
    call("delete_item", TableName=table_name(), Key=worker_key(worker_id))


def workers_alive(*, now_ms: int | None = None, prune: bool = False) -> dict[str, int]:
    """Live workers (heartbeat not expired) -> when they expire (epoch ms).

    With ``prune`` (the consumers' own refresh), workers dead for an hour
    are dropped from the registry, so a crash-looping deployment cannot
    grow it without bound. Without it this is a read: the web's readiness
    check and pipeline page call it, and its role may not update.
    """
    now = now_ms if now_ms is not None else _now_ms()
    item = call("get_item", TableName=table_name(), Key=worker_registry_key(), ConsistentRead=True).get("Item", {})
    expiries = worker_registry_expiries(item)
    dead = [worker_registry_attribute(w) for w, expires in expiries.items() if expires < now - _REGISTRY_KEEP_DEAD_MS]
    if prune and dead:
        names = {f"#d{i}": name for i, name in enumerate(dead)}
        call("update_item", TableName=table_name(), Key=worker_registry_key(),
             UpdateExpression="REMOVE " + ", ".join(names), ExpressionAttributeNames=names)
    return {w: expires for w, expires in expiries.items() if expires > now}


def worker_statuses() -> dict[str, dict]:
    """Each live worker's last reported status (ops pages)."""
    items = items_get_many([worker_key(w) for w in workers_alive()])
    return dict(map(worker_status_from_item, items))


# --- dead letters ---------------------------------------------------------


def dlq_put(*, record: dict, error: str, attempts: int) -> str:
    """Keep a record that could not be processed, with why, for
    DLQ_RETENTION_DAYS (then DynamoDB's TTL deletes it). Returns its id."""
    now = _now_ms()
    item = dead_letter_to_item(record, error=error, attempts=attempts, created_at_ms=now,
                               purge_at=now // 1000 + int(settings.DLQ_RETENTION_DAYS * 86400))
    call("put_item", TableName=table_name(), Item=item)
    return item["sequence_number"]["S"]


def dlq_send(*, client, queue_url: str, record: dict, error: str, attempts: int) -> None:
    """Send a record that could not be processed to the on-failure SQS queue."""
    call("send_message", client=client, QueueUrl=queue_url,
         MessageBody=json.dumps({"error": error, "attempts": attempts, "record": record}, default=str))


def dlq_all() -> list[DeadLetter]:
    """Every dead letter in the table, oldest first."""
    return list(_items("", dead_letter_from_item, pk=DLQ_PK))


def stream_items(*, sk_prefix: str) -> Iterator[dict]:
    """The reader's raw items of one kind (CHECKPOINT#, LEASE#, WORKER#), for
    ops pages and tests. The reader's loop uses BatchGetItem instead: moto
    answers a Query by scanning the whole table."""
    yield from query_all(STREAM_PK, sk_prefix)


def dlq_items() -> Iterator[dict]:
    """The raw DLQ items (tests)."""
    yield from query_all(DLQ_PK, "")


def _items(sk_prefix: str, convert: Callable[[dict], object], *, pk: str = STREAM_PK) -> Iterator:
    try:
        for item in query_all(pk, sk_prefix):
            yield convert(item)
    except (KeyError, ValueError) as exc:
        raise StoreUnavailable(f"malformed {pk} {sk_prefix} item: {exc!r}") from exc
