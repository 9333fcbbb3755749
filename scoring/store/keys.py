"""Every key format, and the mapping between items and domain objects."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from scoring.domain import PlayerTotal, Status, Submission

SCORE_PREFIX = "SCORE#"
PLAYER_PREFIX = "PLAYER#"
CONSUMER_PK = "CONSUMER"
CHECKPOINT_PREFIX = "CHECKPOINT#"
LEASE_PREFIX = "LEASE#"
WORKER_PREFIX = "WORKER#"
DLQ_PK = "DLQ"
REJECTED_PK = "REJECTED"
LEADERBOARD_PK = "LEADERBOARD"
GSI_LEADERBOARD = "GSI1"
GSI_PLAYER_SCORES = "GSI2"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def score_key(submission_id: str) -> dict:
    return {"PK": {"S": SCORE_PREFIX + submission_id}, "SK": {"S": "SCORE"}}


def total_key(player_id: str) -> dict:
    return {"PK": {"S": PLAYER_PREFIX + player_id}, "SK": {"S": "TOTAL"}}


# The stream reader's own items share one partition each, so that reading all
# leases or checkpoints is a Query over a few items, never a table scan.
def shard_checkpoint_key(shard_id: str) -> dict:
    return {"PK": {"S": CONSUMER_PK}, "SK": {"S": CHECKPOINT_PREFIX + shard_id}}


def shard_lease_key(shard_id: str) -> dict:
    return {"PK": {"S": CONSUMER_PK}, "SK": {"S": LEASE_PREFIX + shard_id}}


def worker_key(worker_id: str) -> dict:
    return {"PK": {"S": CONSUMER_PK}, "SK": {"S": WORKER_PREFIX + worker_id}}


def worker_registry_key() -> dict:
    """One item listing live workers, one attribute each: read with GetItem,
    because a Query costs O(table) on moto (it scans every item)."""
    return {"PK": {"S": CONSUMER_PK}, "SK": {"S": "WORKERS"}}


def dlq_key(record_id: str) -> dict:
    return {"PK": {"S": DLQ_PK}, "SK": {"S": record_id}}


def rejected_key(submission_id: str, processed_at: datetime) -> dict:
    """A pointer to a rejected submission, newest last, for the staff page."""
    return {"PK": {"S": REJECTED_PK}, "SK": {"S": f"{iso(processed_at)}#{submission_id}"}}


def player_scores_pk(player_id: str) -> str:
    return PLAYER_PREFIX + player_id


def player_scores_sk(submission: Submission) -> str:
    return f"{iso(submission.submitted_at)}#{submission.id}"


def leaderboard_sort_key(*, total: int, reached_at_ms: int) -> str:
    """GSI1 sort key: higher total first; on a tie, who got there first.

    Read with ScanIndexForward=False, so the time part is inverted.
    """
    return f"{total:015d}#{10**13 - reached_at_ms:013d}"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def to_item(attrs: dict[str, Any]) -> dict:
    return {k: _serializer.serialize(v) for k, v in attrs.items() if v is not None}


def from_item(item: dict) -> dict[str, Any]:
    out = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in out.items()}


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
                "GSI2PK": player_scores_pk(submission.player_id),
                "GSI2SK": player_scores_sk(submission),
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
    )


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
    )

