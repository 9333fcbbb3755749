"""The stream reader's own items: checkpoints, leases, worker heartbeats, DLQ.

All live in the scores table under keys that never begin with ``SCORE#``, so
writing them never feeds the consumer's own filter. Key formats come from
scoring/store.py.
"""

import json
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from scoring import store


def _now_ms() -> int:
    return int(time.time() * 1000)


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# --- checkpoints ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    shard_id: str
    sequence_number: str | None  # last record processed; None: nothing yet
    closed: bool = False  # drained to its end: retired


def checkpoint_get(*, shard_id: str) -> Checkpoint | None:
    item = store._call("get_item", TableName=store._table(), Key=store.shard_checkpoint_key(shard_id),
                       ConsistentRead=True).get("Item")
    if not item:
        return None
    return Checkpoint(shard_id, item.get("sequence_number", {}).get("S"), item.get("closed", {}).get("BOOL", False))


def checkpoint_put(*, shard_id: str, sequence_number: str | None, closed: bool = False) -> None:
    """Record progress on a shard. Sequence numbers, never iterators: an
    iterator expires after 15 minutes, a sequence number does not."""
    item = {**store.shard_checkpoint_key(shard_id), "type": {"S": "CHECKPOINT"}, "shard_id": {"S": shard_id},
            "closed": {"BOOL": closed}, "updated_at_ms": {"N": str(_now_ms())}}
    if sequence_number:
        item["sequence_number"] = {"S": sequence_number}
    store._call("put_item", TableName=store._table(), Item=item)


def checkpoints_all() -> dict[str, Checkpoint]:
    return {c.shard_id: c for c in _items(store.CHECKPOINT_PREFIX, lambda i: Checkpoint(
        i["shard_id"]["S"], i.get("sequence_number", {}).get("S"), i.get("closed", {}).get("BOOL", False)))}


# --- leases ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lease:
    shard_id: str
    owner: str
    expires_at_ms: int


def lease_acquire(*, shard_id: str, owner: str, ttl_seconds: float, now_ms: int | None = None) -> bool:
    """Take or renew the shard's lease if it is free, expired, or ours.

    A conditional write: of two workers racing for a shard, exactly one wins.
    Workers' clocks are assumed to agree within a small part of the TTL.
    """
    now = now_ms if now_ms is not None else _now_ms()
    try:
        store._call(
            "update_item",
            TableName=store._table(),
            Key=store.shard_lease_key(shard_id),
            UpdateExpression="SET #type = :type, shard_id = :shard, #owner = :me, expires_at_ms = :exp",
            ConditionExpression="attribute_not_exists(PK) OR #owner = :me OR expires_at_ms < :now",
            ExpressionAttributeNames={"#owner": "owner", "#type": "type"},
            ExpressionAttributeValues={":type": {"S": "LEASE"}, ":shard": {"S": shard_id}, ":me": {"S": owner},
                                       ":exp": {"N": str(now + int(ttl_seconds * 1000))}, ":now": {"N": str(now)}},
        )
    except ClientError as exc:
        if _conditional_failed(exc):
            return False
        raise
    return True


def lease_release(*, shard_id: str, owner: str) -> None:
    """Give the shard up at once (clean shutdown), if it is still ours."""
    try:
        store._call(
            "update_item",
            TableName=store._table(),
            Key=store.shard_lease_key(shard_id),
            UpdateExpression="SET expires_at_ms = :zero",
            ConditionExpression="#owner = :me",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": owner}},
        )
    except ClientError as exc:
        if not _conditional_failed(exc):
            raise


def leases_all() -> dict[str, Lease]:
    return {lease.shard_id: lease for lease in _items(store.LEASE_PREFIX, lambda i: Lease(
        i["shard_id"]["S"], i["owner"]["S"], int(i["expires_at_ms"]["N"])))}


# --- workers --------------------------------------------------------------


def worker_heartbeat(*, worker_id: str, ttl_seconds: float, status: dict, now_ms: int | None = None) -> None:
    """Announce a live worker and its status, for fair lease shares and the
    staff pipeline page."""
    now = now_ms if now_ms is not None else _now_ms()
    store._call("put_item", TableName=store._table(), Item={
        **store.worker_key(worker_id), "type": {"S": "WORKER"}, "worker_id": {"S": worker_id},
        "heartbeat_ms": {"N": str(now)}, "expires_at_ms": {"N": str(now + int(ttl_seconds * 1000))},
        "status": {"S": json.dumps(status, default=str)},
    })


def worker_remove(*, worker_id: str) -> None:
    store._call("delete_item", TableName=store._table(), Key=store.worker_key(worker_id))


def workers_alive(*, now_ms: int | None = None) -> dict[str, dict]:
    """Live workers (heartbeat not expired) -> their last status."""
    now = now_ms if now_ms is not None else _now_ms()
    out = {}
    for worker_id, expires, status in _items(store.WORKER_PREFIX, lambda i: (
            i["worker_id"]["S"], int(i["expires_at_ms"]["N"]), i.get("status", {}).get("S", "{}"))):
        if expires > now:
            out[worker_id] = json.loads(status)
    return out


# --- dead letters ---------------------------------------------------------


def dlq_put(*, record: dict, error: str, attempts: int) -> str:
    """Keep a record that could not be processed, with why. Returns its id."""
    seq = record.get("dynamodb", {}).get("SequenceNumber", "unknown")
    store._call("put_item", TableName=store._table(), Item={
        **store.dlq_key(seq), "type": {"S": "DLQ"}, "sequence_number": {"S": seq},
        "record": {"S": json.dumps(record, default=str)}, "error": {"S": error[:2000]},
        "attempts": {"N": str(attempts)}, "created_at_ms": {"N": str(_now_ms())},
    })
    return seq


def dlq_all() -> list[dict]:
    return [{"sequence_number": i["sequence_number"]["S"], "error": i["error"]["S"],
             "attempts": int(i["attempts"]["N"]), "record": json.loads(i["record"]["S"])}
            for i in store.dlq_items()]


def _items(sk_prefix: str, convert):
    try:
        for item in store.consumer_items(sk_prefix=sk_prefix):
            yield convert(item)
    except (KeyError, ValueError) as exc:
        raise store.StoreUnavailable(f"malformed {sk_prefix} item: {exc!r}") from exc
