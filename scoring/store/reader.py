"""The stream reader's own items: checkpoints, leases, worker heartbeats, DLQ.

All live in the scores table under keys that never begin with ``SCORE#``, so
writing them never feeds the consumer's own filter. The reader's loop reads
them by key (GetItem, BatchGetItem); moto answers a Query by scanning the
whole table.
"""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from scoring.store.base import StoreUnavailable, call, call_if, items_get_many, query_all, table_name
from scoring.store.keys import (
    CHECKPOINT_PREFIX,
    CONSUMER_PK,
    DLQ_PK,
    LEASE_PREFIX,
    dlq_key,
    shard_checkpoint_key,
    shard_lease_key,
    worker_key,
    worker_registry_key,
)

_REGISTRY_PREFIX = "w:"


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- checkpoints ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    shard_id: str
    sequence_number: str | None  # last record processed; None: nothing yet
    closed: bool = False  # drained to its end: retired


def checkpoint_get(*, shard_id: str) -> Checkpoint | None:
    item = call("get_item", TableName=table_name(), Key=shard_checkpoint_key(shard_id),
                       ConsistentRead=True).get("Item")
    if not item:
        return None
    return Checkpoint(shard_id, item.get("sequence_number", {}).get("S"), item.get("closed", {}).get("BOOL", False))


def checkpoint_put(*, shard_id: str, sequence_number: str | None, closed: bool = False) -> None:
    """Record progress on a shard. Sequence numbers, never iterators: an
    iterator expires after 15 minutes, a sequence number does not."""
    item = {**shard_checkpoint_key(shard_id), "type": {"S": "CHECKPOINT"}, "shard_id": {"S": shard_id},
            "closed": {"BOOL": closed}, "updated_at_ms": {"N": str(_now_ms())}}
    if sequence_number:
        item["sequence_number"] = {"S": sequence_number}
    call("put_item", TableName=table_name(), Item=item)


def _checkpoint(item: dict) -> Checkpoint:
    return Checkpoint(item["shard_id"]["S"], item.get("sequence_number", {}).get("S"),
                      item.get("closed", {}).get("BOOL", False))


def checkpoints_get_many(*, shard_ids: list[str]) -> dict[str, Checkpoint]:
    """Checkpoints of these shards, by key: cost O(shards), whatever the table holds."""
    items = items_get_many([shard_checkpoint_key(s) for s in shard_ids])
    return {c.shard_id: c for c in map(_checkpoint, items)}


def checkpoints_all() -> dict[str, Checkpoint]:
    """Every checkpoint (ops and tests; a Query, see consumer_items)."""
    return {c.shard_id: c for c in _items(CHECKPOINT_PREFIX, _checkpoint)}


# --- leases ---------------------------------------------------------------


# The stall_sequence of a shard that had no checkpoint yet.
NO_CHECKPOINT = "-"


@dataclass(frozen=True, slots=True)
class Lease:
    shard_id: str
    owner: str
    expires_at_ms: int  # 0 once released
    # How many holders in a row died with this lease (it expired instead of
    # being released) while the shard's checkpoint stood at stall_sequence.
    stalls: int = 0
    stall_sequence: str | None = None

    @property
    def died_holding(self) -> bool:
        """Not released: its holder died (or stalled) with it, or still holds it."""
        return self.expires_at_ms > 0

    def deaths_at(self, checkpoint: str | None) -> int:
        """Holders that died with the shard at this checkpoint, in a row."""
        return self.stalls if self.stall_sequence == (checkpoint or NO_CHECKPOINT) else 0


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


def lease_take(*, shard_id: str, owner: str, ttl_seconds: float, seen: Lease | None, checkpoint: str | None,
               now_ms: int | None = None) -> Lease | None:
    """Take a shard's lease that is free or expired, if it is still as ``seen``
    (None: no lease item yet). Renewals go through lease_acquire.

    A lease that expired instead of being released means its holder died
    (or stalled) with it. That death is counted against the shard's
    checkpoint: one more if the last death was at the same checkpoint, else
    the first. Returns the lease taken, or None if another worker changed it
    first.
    """
    now = now_ms if now_ms is not None else _now_ms()
    stalls, stall_sequence = (seen.stalls, seen.stall_sequence) if seen else (0, None)
    if seen and seen.died_holding:
        at = checkpoint or NO_CHECKPOINT
        stalls = stalls + 1 if stall_sequence == at else 1
        stall_sequence = at
    lease = Lease(shard_id, owner, now + int(ttl_seconds * 1000), stalls, stall_sequence)
    item = {**shard_lease_key(shard_id), "type": {"S": "LEASE"}, "shard_id": {"S": shard_id},
            "owner": {"S": owner}, "expires_at_ms": {"N": str(lease.expires_at_ms)}, "stalls": {"N": str(stalls)}}
    if stall_sequence:
        item["stall_sequence"] = {"S": stall_sequence}
    if seen is None:
        condition, values = "attribute_not_exists(PK)", {}
    else:
        condition = "#owner = :seen_owner AND expires_at_ms = :seen_exp AND (#owner = :me OR expires_at_ms < :now)"
        values = {":seen_owner": {"S": seen.owner}, ":seen_exp": {"N": str(seen.expires_at_ms)},
                  ":me": {"S": owner}, ":now": {"N": str(now)}}
    taken = call_if("put_item", TableName=table_name(), Item=item, ConditionExpression=condition,
                    **({"ExpressionAttributeNames": {"#owner": "owner"}, "ExpressionAttributeValues": values}
                       if values else {}))
    return lease if taken else None


def lease_release(*, shard_id: str, owner: str) -> None:
    """Give the shard up at once (clean shutdown), if it is still ours."""
    call_if(
        "update_item",
        TableName=table_name(),
        Key=shard_lease_key(shard_id),
        UpdateExpression="SET expires_at_ms = :zero",
        ConditionExpression="#owner = :me",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": owner}},
    )


def _lease(item: dict) -> Lease:
    return Lease(item["shard_id"]["S"], item["owner"]["S"], int(item["expires_at_ms"]["N"]),
                 int(item.get("stalls", {}).get("N", 0)), item.get("stall_sequence", {}).get("S"))


def leases_get_many(*, shard_ids: list[str]) -> dict[str, Lease]:
    items = items_get_many([shard_lease_key(s) for s in shard_ids])
    return {lease.shard_id: lease for lease in map(_lease, items)}


def leases_all() -> dict[str, Lease]:
    """Every lease (ops and tests; a Query, see consumer_items)."""
    return {lease.shard_id: lease for lease in _items(LEASE_PREFIX, _lease)}


# --- workers --------------------------------------------------------------


def worker_heartbeat(*, worker_id: str, ttl_seconds: float, status: dict, now_ms: int | None = None) -> None:
    """Announce a live worker: its expiry in the registry item (for fair lease
    shares) and its status in its own item (for the staff pipeline page)."""
    now = now_ms if now_ms is not None else _now_ms()
    expires = now + int(ttl_seconds * 1000)
    call("update_item", TableName=table_name(), Key=worker_registry_key(),
                UpdateExpression="SET #w = :exp", ExpressionAttributeNames={"#w": _REGISTRY_PREFIX + worker_id},
                ExpressionAttributeValues={":exp": {"N": str(expires)}})
    call("put_item", TableName=table_name(), Item={
        **worker_key(worker_id), "type": {"S": "WORKER"}, "worker_id": {"S": worker_id},
        "heartbeat_ms": {"N": str(now)}, "expires_at_ms": {"N": str(expires)},
        "status": {"S": json.dumps(status, default=str)},
    })


def worker_remove(*, worker_id: str) -> None:
    call("update_item", TableName=table_name(), Key=worker_registry_key(),
                UpdateExpression="REMOVE #w", ExpressionAttributeNames={"#w": _REGISTRY_PREFIX + worker_id})
    call("delete_item", TableName=table_name(), Key=worker_key(worker_id))


def workers_alive(*, now_ms: int | None = None) -> dict[str, int]:
    """Live workers (heartbeat not expired) -> when they expire (epoch ms).

    Workers dead for an hour are dropped from the registry here, so a
    crash-looping deployment cannot grow it without bound.
    """
    now = now_ms if now_ms is not None else _now_ms()
    item = call("get_item", TableName=table_name(), Key=worker_registry_key(),
                       ConsistentRead=True).get("Item", {})
    alive, dead = {}, []
    for name, value in item.items():
        if name.startswith(_REGISTRY_PREFIX):
            expires = int(value["N"])
            if expires > now:
                alive[name.removeprefix(_REGISTRY_PREFIX)] = expires
            elif expires < now - 3_600_000:
                dead.append(name)
    if dead:
        names = {f"#d{i}": name for i, name in enumerate(dead)}
        call("update_item", TableName=table_name(), Key=worker_registry_key(),
                    UpdateExpression="REMOVE " + ", ".join(names), ExpressionAttributeNames=names)
    return alive


def worker_statuses() -> dict[str, dict]:
    """Each live worker's last reported status (ops pages)."""
    alive = workers_alive()
    items = items_get_many([worker_key(w) for w in alive])
    return {i["worker_id"]["S"]: json.loads(i.get("status", {}).get("S", "{}")) for i in items}


# --- dead letters ---------------------------------------------------------


def dlq_put(*, record: dict, error: str, attempts: int) -> str:
    """Keep a record that could not be processed, with why. Returns its id."""
    seq = record.get("dynamodb", {}).get("SequenceNumber", "unknown")
    call("put_item", TableName=table_name(), Item={
        **dlq_key(seq), "type": {"S": "DLQ"}, "sequence_number": {"S": seq},
        "record": {"S": json.dumps(record, default=str)}, "error": {"S": error[:2000]},
        "attempts": {"N": str(attempts)}, "created_at_ms": {"N": str(_now_ms())},
    })
    return seq


def dlq_all() -> list[dict]:
    return [{"sequence_number": i["sequence_number"]["S"], "error": i["error"]["S"],
             "attempts": int(i["attempts"]["N"]), "record": json.loads(i["record"]["S"])}
            for i in dlq_items()]


def consumer_items(*, sk_prefix: str) -> Iterator[dict]:
    """The reader's items of one kind (CHECKPOINT#, LEASE#, WORKER#), for ops
    pages and tests. The reader's loop uses BatchGetItem instead: moto answers
    a Query by scanning the whole table."""
    yield from query_all(CONSUMER_PK, sk_prefix)


def dlq_items() -> Iterator[dict]:
    yield from query_all(DLQ_PK, "")


def _items(sk_prefix: str, convert):
    try:
        for item in consumer_items(sk_prefix=sk_prefix):
            yield convert(item)
    except (KeyError, ValueError) as exc:
        raise StoreUnavailable(f"malformed {sk_prefix} item: {exc!r}") from exc

