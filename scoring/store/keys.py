"""Every key format, and the mapping between items and objects.

Nothing else in the project builds a key or reads an attribute off an item.
"""

import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from django.conf import settings

from scoring.domain import LeaderboardEntry, PlayerTotal, Review, Status, Submission, rank_key

SCORE_PREFIX = "SCORE#"
PLAYER_PREFIX = "PLAYER#"
# The stream reader's own items. The stored value predates the name: keeping
# it lets existing checkpoints and leases carry over.
STREAM_PK = "CONSUMER"
CHECKPOINT_PREFIX = "CHECKPOINT#"
LEASE_PREFIX = "LEASE#"
WORKER_PREFIX = "WORKER#"
DLQ_PK = "DLQ"
REJECTED_PK = "REJECTED"
HELD_PK = "HELD"
BOARDS_PK = "BOARDS"
# The leaderboard index is sharded: a TOTAL is listed under
# LEADERBOARD#<shard>, its player's stable hash modulo the shard count
# (settings.LEADERBOARD_INDEX_SHARDS), so its writes spread over that many
# index partitions. LEADERBOARD_PK is the one partition they all shared
# before: read until ``migrate_leaderboard_index`` empties it.
LEADERBOARD_PK = "LEADERBOARD"
LEADERBOARD_SHARD_PREFIX = "LEADERBOARD#"
GSI_LEADERBOARD = "GSI1"
GSI_PLAYER_SCORES = "GSI2"
# DynamoDB's Time to Live attribute: epoch seconds after which DynamoDB may
# delete the item. Only housekeeping items carry it; SCORE and TOTAL never do.
PURGE_AT = "purge_at"

_REGISTRY_PREFIX = "w:"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def score_key(submission_id: str) -> dict:
    return {"PK": {"S": SCORE_PREFIX + submission_id}, "SK": {"S": "SCORE"}}


def total_key(player_id: str) -> dict:
    return {"PK": {"S": PLAYER_PREFIX + player_id}, "SK": {"S": "TOTAL"}}


def leaderboard_shard(player_id: str, *, shards: int) -> int:
    """The index shard a player is listed in. CRC-32, not ``hash()``: the
    same in every process and Python version, as a key must be."""
    return zlib.crc32(player_id.encode()) % shards


def leaderboard_pk(player_id: str, *, shards: int) -> str:
    """A listed TOTAL's ``GSI1PK``."""
    return f"{LEADERBOARD_SHARD_PREFIX}{leaderboard_shard(player_id, shards=shards)}"


def leaderboard_partitions(*, shards: int) -> list[str]:
    """Every ``GSI1PK`` a top-N read covers: each shard, and the unsharded
    partition of tables not yet migrated (empty once they are: one Query
    that finds nothing)."""
    return [f"{LEADERBOARD_SHARD_PREFIX}{n}" for n in range(shards)] + [LEADERBOARD_PK]


# The stream reader's own items share one partition each, so that reading all
# leases or checkpoints is a Query over a few items, never a table scan.
def shard_checkpoint_key(shard_id: str) -> dict:
    return {"PK": {"S": STREAM_PK}, "SK": {"S": CHECKPOINT_PREFIX + shard_id}}


def shard_lease_key(shard_id: str) -> dict:
    return {"PK": {"S": STREAM_PK}, "SK": {"S": LEASE_PREFIX + shard_id}}


def worker_key(worker_id: str) -> dict:
    return {"PK": {"S": STREAM_PK}, "SK": {"S": WORKER_PREFIX + worker_id}}


def worker_registry_key() -> dict:
    """One item listing live workers, one attribute each: read with GetItem,
    because a Query costs O(table) on moto (it scans every item)."""
    return {"PK": {"S": STREAM_PK}, "SK": {"S": "WORKERS"}}


def worker_registry_attribute(worker_id: str) -> str:
    return _REGISTRY_PREFIX + worker_id


def worker_registry_expiries(item: dict) -> dict[str, int]:
    """The registry item's workers -> when their heartbeat expires (epoch ms)."""
    return {name.removeprefix(_REGISTRY_PREFIX): int(value["N"]) for name, value in item.items()
            if name.startswith(_REGISTRY_PREFIX)}


def dlq_key(record_id: str) -> dict:
    return {"PK": {"S": DLQ_PK}, "SK": {"S": record_id}}


def rejected_key(submission_id: str, processed_at: datetime) -> dict:
    """A pointer to a rejected submission, newest last, for the staff page."""
    return {"PK": {"S": REJECTED_PK}, "SK": {"S": f"{iso(processed_at)}#{submission_id}"}}


def held_key(submission_id: str, submitted_at: datetime) -> dict:
    """A pointer to a held submission, oldest first, for staff review."""
    return {"PK": {"S": HELD_PK}, "SK": {"S": f"{iso(submitted_at)}#{submission_id}"}}


def boards_stale_key() -> dict:
    """The marker left when the Redis boards missed an update (see scoring/live.py)."""
    return {"PK": {"S": BOARDS_PK}, "SK": {"S": "STALE"}}


def player_scores_pk(player_id: str) -> str:
    return PLAYER_PREFIX + player_id


def player_scores_sk(submission: Submission) -> str:
    return f"{iso(submission.submitted_at)}#{submission.id}"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def to_item(attrs: dict[str, Any]) -> dict:
    return {k: _serializer.serialize(v) for k, v in attrs.items() if v is not None}


def from_item(item: dict) -> dict[str, Any]:
    out = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in out.items()}


def _purge_at(purge_at: int | None) -> dict:
    return {PURGE_AT: {"N": str(purge_at)}} if purge_at is not None else {}


# --- SCORE ----------------------------------------------------------------


def submission_to_item(submission: Submission) -> dict:
    return {
        **score_key(submission.id),
        **to_item(
            {
                "type": "SCORE",
                "submission_id": submission.id,
                "player_id": submission.player_id,
                "player_name": submission.player_name,
                "task": submission.task,
                "submitted_at": iso(submission.submitted_at),
                "status": str(submission.status),
                "points": submission.points,
                "error": submission.error,
                "processed_at": iso(submission.processed_at) if submission.processed_at else None,
                "latency_ms": _latency_ms(submission),
                "idempotency_key": submission.idempotency_key,
                "retry_of": submission.retry_of,
                "retried_by": submission.retried_by,
                "challenge_id": submission.challenge_id,
                "elapsed_ms": submission.elapsed_ms,
                "verified_by": submission.verified_by,
                "hold_reason": submission.hold_reason,
                "review_of": submission.review_of,
                "review": str(submission.review) if submission.review else None,
                "reviewed_by": submission.reviewed_by,
                "review_note": submission.review_note,
                "reviewed_at": iso(submission.reviewed_at) if submission.reviewed_at else None,
                "rules_version": submission.rules_version,
                "rules_change": submission.rules_change,
                "rescore": submission.rescore,
                "summary": submission.summary,
                "reason": submission.reason,
                "rank": submission.rank,
                # A review is not one of the player's submissions: the one it
                # decides is, and shows the outcome (a sparse index).
                "GSI2PK": None if submission.review_of else player_scores_pk(submission.player_id),
                "GSI2SK": None if submission.review_of else player_scores_sk(submission),
            }
        ),
    }


def _latency_ms(submission: Submission) -> int | None:
    if submission.processed_at is None:
        return None
    return int((submission.processed_at - submission.submitted_at).total_seconds() * 1000)


def submission_from_item(item: dict) -> Submission:
    attrs = from_item(item)
    return Submission(
        id=attrs["submission_id"],
        player_id=attrs["player_id"],
        player_name=attrs["player_name"],
        task=attrs["task"],
        submitted_at=parse_iso(attrs["submitted_at"]),
        status=Status(attrs["status"]),
        points=attrs.get("points"),
        error=attrs.get("error"),
        processed_at=parse_iso(attrs["processed_at"]) if attrs.get("processed_at") else None,
        idempotency_key=attrs.get("idempotency_key"),
        retry_of=attrs.get("retry_of"),
        retried_by=attrs.get("retried_by"),
        challenge_id=attrs.get("challenge_id"),
        elapsed_ms=attrs.get("elapsed_ms"),
        verified_by=attrs.get("verified_by"),
        hold_reason=attrs.get("hold_reason"),
        review_of=attrs.get("review_of"),
        review=Review(attrs["review"]) if attrs.get("review") else None,
        reviewed_by=attrs.get("reviewed_by"),
        review_note=attrs.get("review_note"),
        reviewed_at=parse_iso(attrs["reviewed_at"]) if attrs.get("reviewed_at") else None,
        rules_version=attrs.get("rules_version"),
        rules_change=attrs.get("rules_change"),
        rescore={k: int(v) for k, v in attrs["rescore"].items()} if attrs.get("rescore") is not None else None,
        summary=attrs.get("summary"),
        reason=attrs.get("reason"),
        rank=attrs.get("rank"),
    )


def submission_id_of_record(record: dict) -> str | None:
    """The submission a stream record is about, from its keys alone (they are
    there even when its image cannot be parsed); None if not a SCORE item."""
    dynamodb = record.get("dynamodb") if isinstance(record, dict) else None
    keys = (dynamodb or {}).get("Keys") or {}
    pk = keys.get("PK", {}).get("S", "") if isinstance(keys, dict) else ""
    return pk.removeprefix(SCORE_PREFIX) if pk.startswith(SCORE_PREFIX) else None


def rejected_pointer_item(submission_id: str, processed_at: datetime, *, purge_at: int | None) -> dict:
    return {**rejected_key(submission_id, processed_at), "type": {"S": "REJECTED"},
            "submission_id": {"S": submission_id}, **_purge_at(purge_at)}


def pointer_submission_id(item: dict) -> str:
    return item["submission_id"]["S"]


def held_pointer_item(submission: Submission) -> dict:
    return {**held_key(submission.id, submission.submitted_at), "type": {"S": "HELD"},
            "submission_id": {"S": submission.id}}


# --- TOTAL ----------------------------------------------------------------


def total_to_item(total: PlayerTotal, *, index_shards: int | None = None) -> dict:
    """The TOTAL item; listed in the leaderboard index's shard for the
    player (``index_shards``: settings.LEADERBOARD_INDEX_SHARDS unless given)."""
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
        "held": {"M": {k: {"S": v} for k, v in total.held.items()}},
        "recent": {"L": [{"N": str(t)} for t in total.recent]},
        "counts": {"M": {k: {"N": str(v)} for k, v in total.counts.items()}},
        "rescored": {"M": {k: {"L": [{"N": str(n)} for n in v]} for k, v in total.rescored.items()}},
        "versions": {"M": {k: {"N": str(v)} for k, v in total.versions.items()}},
    }
    if total.on_leaderboard:  # a sparse index: a player with nothing applied yet has no rank
        shards = index_shards or settings.LEADERBOARD_INDEX_SHARDS
        item["GSI1PK"] = {"S": leaderboard_pk(total.player_id, shards=shards)}
        item["GSI1SK"] = {"S": rank_key(total=total.total, reached_at_ms=total.reached_at_ms)}
    return item


def total_from_item(item: dict) -> PlayerTotal:
    attrs = from_item(item)
    return PlayerTotal(
        player_id=attrs["player_id"],
        player_name=attrs.get("player_name", ""),
        total=attrs.get("total", 0),
        version=attrs.get("version", 0),
        pending={k: int(v) for k, v in attrs.get("pending", {}).items()},
        reached_at_ms=attrs.get("reached_at_ms", 0),
        windows={k: int(v) for k, v in attrs.get("windows", {}).items()},
        rejected=dict(attrs.get("rejected", {})),
        on_leaderboard="GSI1PK" in item,
        held=dict(attrs.get("held", {})),
        recent=[int(t) for t in attrs.get("recent", [])],
        counts={k: int(v) for k, v in attrs.get("counts", {}).items()},
        rescored={k: [int(n) for n in v] for k, v in attrs.get("rescored", {}).items()},
        versions={k: int(v) for k, v in attrs.get("versions", {}).items()},
    )


# What a top-N read of the index asks for: an entry, its order and its version.
LEADERBOARD_PROJECTION = {"#p": "player_id", "#n": "player_name", "#t": "total", "#v": "version", "#k": "GSI1SK"}


def leaderboard_order(item: dict) -> tuple[str, str]:
    """Sorts index items as the Redis boards do, in descending order: the
    rank key, then (on a tie of both total and moment) the player id."""
    return item["GSI1SK"]["S"], item["player_id"]["S"]


def leaderboard_item_version(item: dict) -> tuple[str, int]:
    """(player id, version) of an index item: the same player read from two
    partitions (moved meanwhile) counts once, as its newer version."""
    return item["player_id"]["S"], int(item.get("version", {}).get("N", "0"))


def leaderboard_index_move(item: dict, *, shards: int) -> tuple[str, str, str] | None:
    """(player id, GSI1PK as stored, the one it should have) for a listed
    TOTAL not in its shard (the unsharded partition, or a shard of another
    count); None if it is in place."""
    player_id, stored = item["player_id"]["S"], item["GSI1PK"]["S"]
    wanted = leaderboard_pk(player_id, shards=shards)
    return None if stored == wanted else (player_id, stored, wanted)


def leaderboard_entry_from_item(item: dict, *, rank: int) -> LeaderboardEntry:
    attrs = from_item(item)
    return LeaderboardEntry(rank=rank, player_id=attrs["player_id"], player_name=attrs.get("player_name", ""),
                            total=attrs.get("total", 0))


# --- the stream reader's items --------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    shard_id: str
    sequence_number: str | None  # last record processed; None: nothing yet
    closed: bool = False  # drained to its end: retired


def checkpoint_to_item(checkpoint: Checkpoint, *, updated_at_ms: int) -> dict:
    item = {**shard_checkpoint_key(checkpoint.shard_id), "type": {"S": "CHECKPOINT"},
            "shard_id": {"S": checkpoint.shard_id}, "closed": {"BOOL": checkpoint.closed},
            "updated_at_ms": {"N": str(updated_at_ms)}}
    if checkpoint.sequence_number:
        item["sequence_number"] = {"S": checkpoint.sequence_number}
    return item


def checkpoint_from_item(item: dict) -> Checkpoint:
    return Checkpoint(item["shard_id"]["S"], item.get("sequence_number", {}).get("S"),
                      item.get("closed", {}).get("BOOL", False))


@dataclass(frozen=True, slots=True)
class Lease:
    shard_id: str
    owner: str
    expires_at_ms: int  # 0 once released
    # How many holders in a row died with this lease (it expired instead of
    # being released) while the shard's checkpoint stood at death_sequence.
    deaths: int = 0
    death_sequence: str | None = None

    @property
    def died_holding(self) -> bool:
        """Not released: its holder died (or stalled) with it, or still holds it."""
        return self.expires_at_ms > 0


def lease_to_item(lease: Lease) -> dict:
    item = {**shard_lease_key(lease.shard_id), "type": {"S": "LEASE"}, "shard_id": {"S": lease.shard_id},
            "owner": {"S": lease.owner}, "expires_at_ms": {"N": str(lease.expires_at_ms)},
            "deaths": {"N": str(lease.deaths)}}
    if lease.death_sequence:
        item["death_sequence"] = {"S": lease.death_sequence}
    return item


def lease_from_item(item: dict) -> Lease:
    # "stalls" and "stall_sequence": the same counter, as leases written
    # before it was renamed store it.
    deaths = item.get("deaths") or item.get("stalls") or {"N": "0"}
    sequence = item.get("death_sequence") or item.get("stall_sequence") or {}
    return Lease(item["shard_id"]["S"], item["owner"]["S"], int(item["expires_at_ms"]["N"]), int(deaths["N"]),
                 sequence.get("S"))


def worker_to_item(worker_id: str, *, heartbeat_ms: int, expires_at_ms: int, status: dict,
                   purge_at: int | None) -> dict:
    return {**worker_key(worker_id), "type": {"S": "WORKER"}, "worker_id": {"S": worker_id},
            "heartbeat_ms": {"N": str(heartbeat_ms)}, "expires_at_ms": {"N": str(expires_at_ms)},
            "status": {"S": json.dumps(status, default=str)}, **_purge_at(purge_at)}


def worker_status_from_item(item: dict) -> tuple[str, dict]:
    return item["worker_id"]["S"], json.loads(item.get("status", {}).get("S", "{}"))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A stream record that could not be processed, and why."""

    sequence_number: str
    error: str
    attempts: int
    record: dict
    submission_id: str | None  # None: the record was not about a SCORE item


def dead_letter_to_item(record: dict, *, error: str, attempts: int, created_at_ms: int,
                        purge_at: int | None) -> dict:
    seq = record.get("dynamodb", {}).get("SequenceNumber", "unknown")
    return {**dlq_key(seq), "type": {"S": "DLQ"}, "sequence_number": {"S": seq},
            "record": {"S": json.dumps(record, default=str)}, "error": {"S": error[:2000]},
            "attempts": {"N": str(attempts)}, "created_at_ms": {"N": str(created_at_ms)}, **_purge_at(purge_at)}


def dead_letter_from_item(item: dict) -> DeadLetter:
    record = json.loads(item["record"]["S"])
    return DeadLetter(item["sequence_number"]["S"], item["error"]["S"], int(item["attempts"]["N"]), record,
                      submission_id_of_record(record))


@dataclass(frozen=True, slots=True)
class BoardsStale:
    """The Redis boards missed ``misses`` updates, the first at ``since_ms``."""

    since_ms: int
    misses: int


def boards_stale_from_item(item: dict) -> BoardsStale:
    return BoardsStale(int(item["since_ms"]["N"]), int(item["misses"]["N"]))
