"""All DynamoDB access and every key format. Nothing else builds keys.

Single-table design (see docs/data-model.md):

=========  =====================  ==========  ===================================
item       PK                     SK          indexes
=========  =====================  ==========  ===================================
SCORE      SCORE#<submission id>  SCORE       GSI2: PLAYER#<id> / <submitted>#<id>
TOTAL      PLAYER#<player id>     TOTAL       GSI1: LEADERBOARD / <total>#<first>
=========  =====================  ==========  ===================================

The stream consumer filters on INSERT of PK prefix ``SCORE#``, so every other
item type is invisible to it by construction.
"""

import dataclasses
import functools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from scoring.domain import LeaderboardEntry, Page, PlayerTotal, Status, Submission, retry_id

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

# Errors that mean "DynamoDB cannot take this right now"; botocore has already
# retried them (bounded, with jitter) by the time we see them.
_UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreUnavailable(Exception):
    """DynamoDB is unreachable, throttling, or the table is missing."""


class SubmissionExists(Exception):
    """A SCORE item with this id is already stored."""

    def __init__(self, existing: Submission):
        super().__init__(existing.id)
        self.existing = existing


# --- client ---------------------------------------------------------------


def client():
    """The DynamoDB client for the current settings (built lazily, cached)."""
    return _client(
        settings.DYNAMODB_ENDPOINT_URL,
        settings.AWS_REGION,
        settings.DYNAMODB_MAX_ATTEMPTS,
        settings.DYNAMODB_CONNECT_TIMEOUT,
        settings.DYNAMODB_READ_TIMEOUT,
    )


@functools.lru_cache(maxsize=16)
def _client(endpoint_url, region, max_attempts, connect_timeout, read_timeout):
    config = Config(
        region_name=region,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=64,
        # Requests are built here, not from user input, and DynamoDB validates
        # them anyway; skipping botocore's client-side check is ~0.2 ms a call
        # on the submit path (bench/api_submit.py).
        parameter_validation=False,
    )
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url, config=config)


def streams_client():
    """The DynamoDB Streams client for the current settings (cached)."""
    return _streams_client(settings.DYNAMODB_ENDPOINT_URL, settings.AWS_REGION)


@functools.lru_cache(maxsize=16)
def _streams_client(endpoint_url, region):
    config = Config(region_name=region, retries={"total_max_attempts": 5, "mode": "standard"},
                    connect_timeout=2, read_timeout=10)
    return boto3.session.Session().client("dynamodbstreams", endpoint_url=endpoint_url, config=config)


def sqs_client():
    """SQS, for the consumer's on-failure destination when one is configured."""
    return _sqs_client(settings.DYNAMODB_ENDPOINT_URL, settings.AWS_REGION)


@functools.lru_cache(maxsize=4)
def _sqs_client(endpoint_url, region):
    return boto3.session.Session().client("sqs", endpoint_url=endpoint_url, region_name=region)


def stream_arn() -> str:
    """The table's current stream ARN."""
    table = _call("describe_table", TableName=_table())["Table"]
    arn = table.get("LatestStreamArn")
    if not arn or not table.get("StreamSpecification", {}).get("StreamEnabled"):
        raise StoreUnavailable(f"Table {_table()} has no enabled stream; run manage.py init_dynamodb")
    return arn


def _table() -> str:
    return settings.DYNAMODB_TABLE


def _call(method: str, **kwargs) -> dict:
    """Call DynamoDB, turning outages and throttling into StoreUnavailable."""
    try:
        return getattr(client(), method)(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _UNAVAILABLE_CODES:
            raise StoreUnavailable(f"DynamoDB {method} failed: {code}") from exc
        raise
    except BotoCoreError as exc:
        raise StoreUnavailable(f"DynamoDB {method} failed: {exc}") from exc


# --- keys -----------------------------------------------------------------


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


def consumer_items(*, sk_prefix: str) -> Iterator[dict]:
    """The reader's items of one kind (CHECKPOINT#, LEASE#, WORKER#), for ops
    pages and tests. The reader's loop uses BatchGetItem instead: moto answers
    a Query by scanning the whole table."""
    yield from _query_all(CONSUMER_PK, sk_prefix)


def dlq_items() -> Iterator[dict]:
    yield from _query_all(DLQ_PK, "")


def _query_all(pk: str, sk_prefix: str) -> Iterator[dict]:
    paginator = client().get_paginator("query")
    values = {":pk": {"S": pk}}
    condition = "PK = :pk"
    if sk_prefix:
        condition += " AND begins_with(SK, :sk)"
        values[":sk"] = {"S": sk_prefix}
    for page in paginator.paginate(TableName=_table(), KeyConditionExpression=condition,
                                   ExpressionAttributeValues=values, ConsistentRead=True):
        yield from page.get("Items", [])


def _player_scores_pk(player_id: str) -> str:
    return PLAYER_PREFIX + player_id


def _player_scores_sk(submission: Submission) -> str:
    return f"{_iso(submission.submitted_at)}#{submission.id}"


def leaderboard_sort_key(*, total: int, reached_at_ms: int) -> str:
    """GSI1 sort key: higher total first; on a tie, who got there first.

    Read with ScanIndexForward=False, so the time part is inverted.
    """
    return f"{total:015d}#{10**13 - reached_at_ms:013d}"


# --- mapping --------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _to_item(attrs: dict[str, Any]) -> dict:
    return {k: _serializer.serialize(v) for k, v in attrs.items() if v is not None}


def _from_item(item: dict) -> dict[str, Any]:
    out = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in out.items()}


def submission_to_item(submission: Submission) -> dict:
    return {
        **score_key(submission.id),
        **_to_item(
            {
                "type": "SCORE",
                "submission_id": submission.id,
                "player_id": submission.player_id,
                "player_name": submission.player_name,
                "task": submission.task,
                "submitted_at": _iso(submission.submitted_at),
                "status": str(submission.status),
                "points": submission.points,
                "error": submission.error,
                "processed_at": _iso(submission.processed_at) if submission.processed_at else None,
                "latency_ms": _latency_ms(submission),
                "idempotency_key": submission.idempotency_key,
                "retry_of": submission.retry_of,
                "GSI2PK": _player_scores_pk(submission.player_id),
                "GSI2SK": _player_scores_sk(submission),
            }
        ),
    }


def _latency_ms(submission: Submission) -> int | None:
    if submission.processed_at is None:
        return None
    return int((submission.processed_at - submission.submitted_at).total_seconds() * 1000)


def submission_from_item(item: dict) -> Submission:
    attrs = _from_item(item)
    return Submission(
        id=attrs["submission_id"],
        player_id=attrs["player_id"],
        player_name=attrs["player_name"],
        task=attrs["task"],
        submitted_at=_parse_iso(attrs["submitted_at"]),
        status=Status(attrs["status"]),
        points=attrs.get("points"),
        error=attrs.get("error"),
        processed_at=_parse_iso(attrs["processed_at"]) if attrs.get("processed_at") else None,
        idempotency_key=attrs.get("idempotency_key"),
        retry_of=attrs.get("retry_of"),
    )


# --- SCORE items ----------------------------------------------------------


def score_put(*, submission: Submission) -> None:
    """Store a new SCORE item; the only write the API ever makes.

    Conditional on the id being new. If it is not, raises SubmissionExists
    carrying the stored item, which DynamoDB returns with the failure, so an
    idempotent retry costs one call and writes nothing.
    """
    try:
        _call(
            "put_item",
            TableName=_table(),
            Item=submission_to_item(submission),
            ConditionExpression="attribute_not_exists(PK)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        item = exc.response.get("Item")
        existing = submission_from_item(item) if item else score_get(submission_id=submission.id)
        raise SubmissionExists(existing) from None


def score_get(*, submission_id: str) -> Submission | None:
    """The submission with this id, or None."""
    response = _call("get_item", TableName=_table(), Key=score_key(submission_id), ConsistentRead=True)
    item = response.get("Item")
    return submission_from_item(item) if item else None


def score_list_for_player(*, player_id: str, limit: int, start_key: dict | None = None) -> Page:
    """A player's submissions, newest first, ``limit`` at a time."""
    kwargs = {
        "TableName": _table(),
        "IndexName": GSI_PLAYER_SCORES,
        "KeyConditionExpression": "GSI2PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": _player_scores_pk(player_id)}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    response = _call("query", **kwargs)
    items = [submission_from_item(item) for item in response.get("Items", [])]
    next_key = response.get("LastEvaluatedKey")
    return Page(items=items, next_key=next_key)


def score_start_key_owner(start_key: dict) -> str | None:
    """The player a GSI2 position belongs to, to refuse a foreign cursor."""
    pk = start_key.get("GSI2PK", {}).get("S", "")
    return pk.removeprefix(PLAYER_PREFIX) if pk.startswith(PLAYER_PREFIX) else None


# --- leaderboard ----------------------------------------------------------


def leaderboard_top(*, limit: int) -> list[LeaderboardEntry]:
    """The top ``limit`` TOTAL items, best first."""
    response = _call(
        "query",
        TableName=_table(),
        IndexName=GSI_LEADERBOARD,
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": LEADERBOARD_PK}},
        ScanIndexForward=False,
        Limit=limit,
    )
    entries = []
    for rank, item in enumerate(response.get("Items", []), start=1):
        attrs = _from_item(item)
        entries.append(
            LeaderboardEntry(
                rank=rank,
                player_id=attrs["player_id"],
                player_name=attrs["player_name"],
                total=attrs["total"],
            )
        )
    return entries


# --- the consumer's reads and writes ---------------------------------------


def total_from_item(item: dict) -> PlayerTotal:
    attrs = _from_item(item)
    return PlayerTotal(
        player_id=attrs["player_id"],
        player_name=attrs.get("player_name", ""),
        total=attrs.get("total", 0),
        version=attrs.get("version", 0),
        pending={k: int(v) for k, v in attrs.get("pending", {}).items()},
        reached_at_ms=attrs.get("reached_at_ms", 0),
        windows={k: int(v) for k, v in attrs.get("windows", {}).items()},
    )


def items_get_many(keys: list[dict]) -> list[dict]:
    """Raw items for these keys (consistent reads, missing ones left out)."""
    return _batch_get(keys)


def _batch_get(keys: list[dict]) -> list[dict]:
    """BatchGetItem in pages of 100, consistent, retrying unprocessed keys."""
    items: list[dict] = []
    for start in range(0, len(keys), 100):
        request = {_table(): {"Keys": keys[start:start + 100], "ConsistentRead": True}}
        for response in _batch_until_done("batch_get_item", request, unprocessed="UnprocessedKeys"):
            items += response.get("Responses", {}).get(_table(), [])
    return items


def _batch_until_done(method: str, request: dict, *, unprocessed: str) -> Iterator[dict]:
    """Call a batch operation, resending what DynamoDB left unprocessed
    (with backoff), up to 10 times; yields each response."""
    for attempt in range(10):
        response = _call(method, RequestItems=request)
        yield response
        request = response.get(unprocessed) or {}
        if not request:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))
    raise StoreUnavailable(f"{method} left requests unprocessed after 10 attempts")


def scores_get_many(*, submission_ids: list[str]) -> dict[str, Submission]:
    """The current SCORE items for these ids (missing ones are left out)."""
    items = _batch_get([score_key(i) for i in dict.fromkeys(submission_ids)])
    return {s.id: s for s in map(submission_from_item, items)}


def totals_get_many(*, player_ids: list[str]) -> dict[str, PlayerTotal]:
    """The current TOTAL items for these players (missing ones are left out)."""
    items = _batch_get([total_key(p) for p in dict.fromkeys(player_ids)])
    return {t.player_id: t for t in map(total_from_item, items)}


def total_put_if_version(*, total: PlayerTotal, expected_version: int) -> bool:
    """Write a TOTAL item if nobody changed it since ``expected_version``.

    Returns False when someone did (another worker, or a replay that got
    there first); the caller re-reads and folds again.
    """
    item = {
        **total_key(total.player_id),
        **_to_item(
            {
                "type": "TOTAL",
                "player_id": total.player_id,
                "player_name": total.player_name,
                "total": total.total,
                "version": total.version,
                "reached_at_ms": total.reached_at_ms,
                "GSI1PK": LEADERBOARD_PK,
                "GSI1SK": leaderboard_sort_key(total=total.total, reached_at_ms=total.reached_at_ms),
            }
        ),
        # An empty map must still be written: TypeSerializer turns {} into {"M": {}}.
        "pending": {"M": {k: {"N": str(v)} for k, v in total.pending.items()}},
        "windows": {"M": {k: {"N": str(v)} for k, v in total.windows.items()}},
    }
    condition = "attribute_not_exists(PK)" if expected_version == 0 else "version = :v"
    kwargs = {"ExpressionAttributeValues": {":v": {"N": str(expected_version)}}} if expected_version else {}
    try:
        _call("put_item", TableName=_table(), Item=item, ConditionExpression=condition, **kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _batch_write(items: list[dict]) -> None:
    """BatchWriteItem puts in pages of 25, retrying unprocessed items."""
    for start in range(0, len(items), 25):
        request = {_table(): [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        for _ in _batch_until_done("batch_write_item", request, unprocessed="UnprocessedItems"):
            pass


def rejected_key(submission: Submission) -> dict:
    """A pointer to a rejected submission, newest last, for the staff page."""
    return {"PK": {"S": REJECTED_PK}, "SK": {"S": f"{_iso(submission.processed_at)}#{submission.id}"}}


def rejected_recent(*, limit: int) -> list[Submission]:
    """The most recently rejected submissions (one partition, newest first)."""
    response = _call("query", TableName=_table(), KeyConditionExpression="PK = :pk",
                     ExpressionAttributeValues={":pk": {"S": REJECTED_PK}}, ScanIndexForward=False, Limit=limit)
    ids = [item["submission_id"]["S"] for item in response.get("Items", [])]
    found = scores_get_many(submission_ids=ids)
    return [found[i] for i in ids if i in found and found[i].status is Status.REJECTED]


def score_retry(*, submission_id: str, now: datetime) -> Submission | None:
    """Put a rejected submission through the pipeline again, exactly once.

    The retry is a new SCORE item (an INSERT on the stream, processed like
    any submission) whose id is derived from the original's, so a second
    retry of the same submission is refused by the conditional put: of two
    staff clicking at once, one wins. The original stays as it was, for the
    record. Only a rejected submission can be retried. The web role needs no
    write but its PutItem on SCORE items for this.
    """
    original = score_get(submission_id=submission_id)
    if original is None or original.status is not Status.REJECTED:
        return None
    retry = Submission(id=retry_id(original.id), player_id=original.player_id, player_name=original.player_name,
                       task=original.task, submitted_at=now, retry_of=original.id)
    try:
        score_put(submission=retry)
    except SubmissionExists:
        return None
    return retry


def retried_ids(*, submission_ids: list[str]) -> set[str]:
    """Which of these submissions already have a retry."""
    retries = scores_get_many(submission_ids=[retry_id(i) for i in submission_ids])
    return {s.retry_of for s in retries.values() if s.retry_of}


def scores_put_outcomes(*, submissions: list[Submission]) -> None:
    """Write outcomes onto SCORE items, 25 a call.

    Whole-item puts (BatchWriteItem takes no conditions or updates). Safe
    because the TOTAL item's ``pending`` map, not the SCORE item, is what
    guards the total; a later put for the same id carries the same outcome.
    These are MODIFY events on the stream, which the consumer's filter skips.
    """
    items = [submission_to_item(s) for s in submissions]
    items += [{**rejected_key(s), "type": {"S": "REJECTED"}, "submission_id": {"S": s.id}}
              for s in submissions if s.status is Status.REJECTED]
    _batch_write(items)


def scores_scan() -> Iterator[Submission]:
    """Every SCORE item, for rebuilding totals. A full scan: an ops tool."""
    paginator = client().get_paginator("scan")
    for page in paginator.paginate(
        TableName=_table(),
        FilterExpression="begins_with(PK, :p)",
        ExpressionAttributeValues={":p": {"S": SCORE_PREFIX}},
    ):
        for item in page.get("Items", []):
            yield submission_from_item(item)


def totals_scan() -> Iterator[PlayerTotal]:
    """Every TOTAL item."""
    paginator = client().get_paginator("scan")
    for page in paginator.paginate(
        TableName=_table(),
        FilterExpression="begins_with(PK, :p) AND SK = :sk",
        ExpressionAttributeValues={":p": {"S": PLAYER_PREFIX}, ":sk": {"S": "TOTAL"}},
    ):
        for item in page.get("Items", []):
            yield total_from_item(item)


def score_settle_failed(*, record: dict, error: str) -> None:
    """Give a dead-lettered submission an outcome, whatever its record holds.

    Rejected, unless its player's TOTAL already counts it (a failure after the
    commit point): then it is applied with the points counted, so that the
    SCORE item never disagrees with the total. Only a pending item changes.
    """
    keys = record.get("dynamodb", {}).get("Keys") or {}
    pk = keys.get("PK", {}).get("S", "")
    if not pk.startswith(SCORE_PREFIX):
        return
    submission_id = pk.removeprefix(SCORE_PREFIX)
    current = score_get(submission_id=submission_id)
    if current is None or current.status is not Status.PENDING:
        return
    total = totals_get_many(player_ids=[current.player_id]).get(current.player_id)
    if total is not None and submission_id in total.pending:
        values = {":s": {"S": "applied"}, ":p": {"N": str(total.pending[submission_id])}}
        update = "SET #status = :s, points = :p, processed_at = :t"
    else:
        values = {":s": {"S": "rejected"}, ":e": {"S": error}}
        update = "SET #status = :s, #error = :e, processed_at = :t"
    values[":t"] = {"S": _iso(datetime.now(UTC))}
    values[":pending"] = {"S": "pending"}
    names = {"#status": "status"}
    if ":e" in values:
        names["#error"] = "error"
    try:
        _call("update_item", TableName=_table(), Key=score_key(submission_id), UpdateExpression=update,
              ConditionExpression="#status = :pending", ExpressionAttributeNames=names,
              ExpressionAttributeValues=values)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return
    if ":e" in values:  # rejected: list it for the staff pipeline page
        pointer = rejected_key(dataclasses.replace(current, processed_at=_parse_iso(values[":t"]["S"])))
        _call("put_item", TableName=_table(),
              Item={**pointer, "type": {"S": "REJECTED"}, "submission_id": {"S": submission_id}})


# --- table ----------------------------------------------------------------


def table_definition(name: str) -> dict:
    """CreateTable arguments: keys, both GSIs, on-demand billing, a stream."""

    def gsi(index: str) -> dict:
        return {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": f"{index}PK", "KeyType": "HASH"},
                {"AttributeName": f"{index}SK", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [gsi(GSI_LEADERBOARD), gsi(GSI_PLAYER_SCORES)],
        "BillingMode": "PAY_PER_REQUEST",
        # NEW_AND_OLD_IMAGES lets filters and the Lambda path see whole items.
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def table_ensure(*, name: str | None = None) -> tuple[str, bool]:
    """Create the table with its stream if missing. Returns (stream ARN, created).

    Idempotent: an existing table is left alone, except that a disabled
    stream is switched on, because the whole product depends on it.
    """
    name = name or _table()
    ddb = client()
    created = False
    try:
        ddb.create_table(**table_definition(name))
        created = True
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    description = ddb.describe_table(TableName=name)["Table"]
    if not description.get("StreamSpecification", {}).get("StreamEnabled"):
        ddb.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        description = ddb.describe_table(TableName=name)["Table"]
    return description["LatestStreamArn"], created


def table_delete(*, name: str) -> None:
    client().delete_table(TableName=name)


def table_item_count(*, name: str | None = None) -> int:
    """Exact item count by a full scan; DescribeTable's count is approximate."""
    paginator = client().get_paginator("scan")
    return sum(page["Count"] for page in paginator.paginate(TableName=name or _table(), Select="COUNT"))
