"""In-memory fake of boto3's ``dynamodbstreams`` client, for stream-reader tests.

moto serves one shard that never closes, never splits and never expires, so a
reader's handling of shard lineage, closing, expiry and trimming cannot be
exercised against it. This fake implements the three calls a reader makes,
with boto3's request and response shapes, and the following documented AWS
behaviours (Amazon DynamoDB API Reference, "Amazon DynamoDB Streams" actions,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/):

* DescribeStream (API_streams_DescribeStream.html): ``Limit`` defaults to and
  is capped at 100 shards a page; ``LastEvaluatedShardId`` is present only
  while more shards follow; a shard with an ``EndingSequenceNumber`` is closed;
  ``ParentShardId`` links a child to the shard it replaced.
* GetShardIterator (API_streams_GetShardIterator.html): TRIM_HORIZON, LATEST,
  AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER; "a shard iterator expires 15
  minutes after it is returned to the requester"; a sequence number older than
  the trim point raises TrimmedDataAccessException.
* GetRecords (API_streams_GetRecords.html): ``Limit`` at most 1000, and
  "a maximum of 1 MB of data": a page ends before the record that would
  take it past 1 MB (counted as the records' ``SizeBytes``; a test may
  lower the cap with ``page_bytes``), so a short page is no sign of the
  shard's end; an empty
  ``Records`` list from an open shard still carries a ``NextShardIterator``;
  "if set to null, the shard has been closed and the requested iterator will
  not return any more data"; an iterator whose records were trimmed before
  use raises TrimmedDataAccessException (API_streams_TrimmedDataAccessException).
* StreamRecord (API_streams_StreamRecord.html): ``ApproximateCreationDateTime``
  rounded down to the second, ``SequenceNumber`` 21 to 40 digits.
* Retention (Developer Guide, Streams.html): records are removed after 24
  hours, shards are ephemeral, and a shard can be replaced by one child or
  split into two; readers must finish a parent before its children.

Not modelled: AT_TIMESTAMP, ShardFilter, throttling
(LimitExceededException), more than one stream, and stream views other than
NEW_AND_OLD_IMAGES. Time is whatever ``clock`` says; nothing trims on its own,
call ``trim()``. The response metadata, errors and iterator encoding are in
tests/fakes/stream_wire.py.
"""

from __future__ import annotations

import bisect
import copy
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from botocore.exceptions import ParamValidationError
from botocore.utils import parse_timestamp

from tests.fakes.stream_wire import Exceptions, iterator_decode, iterator_encode, metadata, seq_format

RETENTION_SECONDS = 24 * 60 * 60
ITERATOR_TTL_SECONDS = 15 * 60
DESCRIBE_STREAM_MAX_LIMIT = 100
GET_RECORDS_MAX_LIMIT = 1000
GET_RECORDS_MAX_BYTES = 1024 * 1024
ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")
EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
VIEW_TYPE = "NEW_AND_OLD_IMAGES"
# The project's table keys; override with key_schema= for other tables.
_DEFAULT_KEY_SCHEMA = [
    {"AttributeName": "PK", "KeyType": "HASH"},
    {"AttributeName": "SK", "KeyType": "RANGE"},
]


@dataclass
class _Record:
    seq: int
    created_at: float
    body: dict[str, Any]


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    start_seq: int
    records: list[_Record] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  # parallel to records, for bisect
    issued: set[int] = field(default_factory=set)  # every seq ever appended, trimmed or not
    end_seq: int | None = None
    closed_at: float | None = None
    trimmed_through: int | None = None  # highest sequence number trimmed away
    removed: bool = False  # gone from DescribeStream; kept so live iterators still resolve

    def horizon(self) -> int:
        """Lowest position that still has (or may get) readable data."""
        return self.start_seq if self.trimmed_through is None else self.trimmed_through + 1


class FakeDynamoDBStreams:
    """Drop-in for ``boto3.client("dynamodbstreams")`` over one stream.

    ``describe_stream``, ``get_shard_iterator`` and ``get_records`` take
    keyword arguments only, as boto3's do. The other public methods
    (``create_shard``, ``put_record``, ``close_shard``, ``roll``, ``split``,
    ``trim``) are the test-control API and have no AWS equivalent.
    """

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        table_name: str = "test",
        region: str = "us-east-1",
        *,
        key_schema: list[dict[str, str]] | None = None,
        page_bytes: int = GET_RECORDS_MAX_BYTES,
    ) -> None:
        self._clock = clock or time.time
        self._page_bytes = page_bytes
        self._table = table_name
        self._region = region
        self._key_schema = copy.deepcopy(key_schema or _DEFAULT_KEY_SCHEMA)
        self._created = self._clock()
        created = datetime.fromtimestamp(self._created, UTC)
        self._label = label = created.strftime("%Y-%m-%dT%H:%M:%S.000")
        self._arn = f"arn:aws:dynamodb:{region}:123456789012:table/{table_name}/stream/{label}"
        self._shards: dict[str, _Shard] = {}  # insertion order is creation order
        self._next_seq = 100_000_000_000_000_000_000  # 21 digits, like AWS's shortest
        self._last_shard_ms = 0
        # Readers often poll from a thread while the test appends records.
        self._lock = threading.RLock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.exceptions = Exceptions()

    @property
    def stream_arn(self) -> str:
        """ARN of the one stream this fake serves."""
        return self._arn

    # --- boto3 API ----------------------------------------------------------

    def describe_stream(
        self, *, StreamArn: str, Limit: int | None = None, ExclusiveStartShardId: str | None = None
    ) -> dict:
        """DescribeStream: one page of shards, in creation order."""
        op = "DescribeStream"
        with self._lock:
            self._record_call(
                "describe_stream", StreamArn=StreamArn, Limit=Limit, ExclusiveStartShardId=ExclusiveStartShardId
            )
            self._check_stream(op, StreamArn)
            limit = self._check_limit(op, Limit, DESCRIBE_STREAM_MAX_LIMIT)
            visible = [s for s in self._shards.values() if not s.removed]
            if ExclusiveStartShardId is not None:
                # Shard ids sort in creation order, so a start id that has since
                # been trimmed away still positions the page correctly.
                visible = [s for s in visible if s.shard_id > ExclusiveStartShardId]
            page = visible[:limit]
            description = {
                "StreamArn": self._arn,
                "StreamLabel": self._label,
                "StreamStatus": "ENABLED",
                "StreamViewType": VIEW_TYPE,
                "CreationRequestDateTime": parse_timestamp(int(self._created)),
                "TableName": self._table,
                "KeySchema": copy.deepcopy(self._key_schema),
                "Shards": [self._describe_shard(s) for s in page],
            }
            if len(visible) > limit:
                description["LastEvaluatedShardId"] = page[-1].shard_id
            return {"StreamDescription": description, "ResponseMetadata": metadata()}

    def get_shard_iterator(
        self, *, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str | None = None
    ) -> dict:
        """GetShardIterator: an opaque iterator, valid for 15 minutes."""
        op = "GetShardIterator"
        with self._lock:
            self._record_call(
                "get_shard_iterator",
                StreamArn=StreamArn,
                ShardId=ShardId,
                ShardIteratorType=ShardIteratorType,
                SequenceNumber=SequenceNumber,
            )
            self._check_stream(op, StreamArn)
            shard = self._shards.get(ShardId)
            if shard is None or shard.removed:
                self._raise(op, "ResourceNotFoundException", f"Requested resource not found: Shard: {ShardId}")
            if ShardIteratorType not in ITERATOR_TYPES:
                if ShardIteratorType == "AT_TIMESTAMP":
                    raise NotImplementedError("FakeDynamoDBStreams does not model AT_TIMESTAMP")
                self._raise(op, "ValidationException", f"Invalid ShardIteratorType: {ShardIteratorType}")
            if ShardIteratorType == "TRIM_HORIZON":
                position = shard.horizon()
            elif ShardIteratorType == "LATEST":
                position = shard.seqs[-1] + 1 if shard.seqs else shard.horizon()
            else:
                if SequenceNumber is None:
                    self._raise(op, "ValidationException", f"{ShardIteratorType} needs a SequenceNumber")
                if not isinstance(SequenceNumber, str) or not SequenceNumber.isdigit():
                    self._raise(op, "ValidationException", f"Invalid SequenceNumber: {SequenceNumber!r}")
                seq = int(SequenceNumber)
                # A number from another shard is a reader bug worth surfacing.
                if seq != shard.start_seq and seq not in shard.issued:
                    self._raise(op, "ValidationException", f"SequenceNumber {SequenceNumber} not in {ShardId}")
                if shard.trimmed_through is not None and seq <= shard.trimmed_through:
                    self._raise(op, "TrimmedDataAccessException", f"{SequenceNumber} is past the trim point")
                position = seq if ShardIteratorType == "AT_SEQUENCE_NUMBER" else seq + 1
            return {"ShardIterator": self._encode(shard.shard_id, position), "ResponseMetadata": metadata()}

    def get_records(self, *, ShardIterator: str, Limit: int | None = None) -> dict:
        """GetRecords: up to ``Limit`` records from the iterator's position."""
        op = "GetRecords"
        with self._lock:
            self._record_call("get_records", ShardIterator=ShardIterator, Limit=Limit)
            limit = self._check_limit(op, Limit, GET_RECORDS_MAX_LIMIT)
            arn, shard_id, position, issued_at = self._decode(op, ShardIterator)
            self._check_stream(op, arn)
            shard = self._shards.get(shard_id)
            if shard is None:
                self._raise(op, "ResourceNotFoundException", f"Requested resource not found: Shard: {shard_id}")
            if self._clock() - issued_at >= ITERATOR_TTL_SECONDS:
                self._raise(op, "ExpiredIteratorException", f"Iterator expired. It was created at {issued_at}")
            if shard.trimmed_through is not None and position <= shard.trimmed_through:
                self._raise(op, "TrimmedDataAccessException", "The data you are trying to access was trimmed")
            start = bisect.bisect_left(shard.seqs, position)
            batch = shard.records[start : start + limit]
            size = 0
            for i, record in enumerate(batch):
                size += record.body["dynamodb"]["SizeBytes"]
                if size > self._page_bytes and i > 0:
                    batch = batch[:i]
                    break
            next_position = batch[-1].seq + 1 if batch else position
            response: dict[str, Any] = {
                "Records": [copy.deepcopy(r.body) for r in batch],
                "ResponseMetadata": metadata(),
            }
            drained = shard.end_seq is not None and start + len(batch) >= len(shard.records)
            if not drained:
                response["NextShardIterator"] = self._encode(shard_id, next_position)
            return response

    # --- test control API ---------------------------------------------------

    def create_shard(self, parent_shard_id: str | None = None) -> str:
        """Add an open shard, optionally the child of ``parent_shard_id``.

        The parent is left as it is; ``roll`` and ``split`` close it first,
        which is what AWS does.
        """
        with self._lock:
            if parent_shard_id is not None:
                self._shard(parent_shard_id)
            # Strictly increasing digits make ids sort in creation order.
            self._last_shard_ms = max(int(self._clock() * 1000), self._last_shard_ms + 1)
            shard_id = f"shardId-{self._last_shard_ms:020d}-{secrets.token_hex(4)}"
            self._shards[shard_id] = _Shard(shard_id, parent_shard_id, self._take_seq())
            return shard_id

    def put_record(
        self,
        shard_id: str,
        *,
        event_name: str = "INSERT",
        keys: dict[str, Any],
        new_image: dict[str, Any] | None = None,
        old_image: dict[str, Any] | None = None,
        created_at: float | None = None,
    ) -> str:
        """Append a stream record; return its sequence number.

        ``keys`` and images are AttributeValue JSON (``{"PK": {"S": "x"}}``).
        Images default to the keys alone. INSERT carries no OldImage and
        REMOVE no NewImage, as on AWS. ``created_at`` (epoch seconds)
        defaults to the clock.
        """
        with self._lock:
            shard = self._shard(shard_id)
            if shard.end_seq is not None:
                raise ValueError(f"shard {shard_id} is closed; AWS never appends to a closed shard")
            if event_name not in EVENT_NAMES:
                raise ValueError(f"event_name must be one of {EVENT_NAMES}, not {event_name!r}")
            if event_name == "INSERT" and old_image is not None:
                raise ValueError("an INSERT has no OldImage")
            if event_name == "REMOVE" and new_image is not None:
                raise ValueError("a REMOVE has no NewImage")
            created_at = self._clock() if created_at is None else created_at
            seq = self._take_seq()
            data: dict[str, Any] = {
                "ApproximateCreationDateTime": parse_timestamp(int(created_at)),
                "Keys": copy.deepcopy(keys),
            }
            if event_name != "REMOVE":
                data["NewImage"] = copy.deepcopy(new_image if new_image is not None else keys)
            if event_name != "INSERT":
                data["OldImage"] = copy.deepcopy(old_image if old_image is not None else keys)
            sizes = {k: v for k, v in data.items() if k != "ApproximateCreationDateTime"}
            data["SequenceNumber"] = seq_format(seq)
            data["SizeBytes"] = max(1, len(json.dumps(sizes, separators=(",", ":"))))
            data["StreamViewType"] = VIEW_TYPE
            body = {
                "eventID": secrets.token_hex(16),
                "eventName": event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": self._region,
                "dynamodb": data,
            }
            shard.records.append(_Record(seq, created_at, body))
            shard.seqs.append(seq)
            shard.issued.add(seq)
            return seq_format(seq)

    def close_shard(self, shard_id: str) -> None:
        """Close a shard: it gets an EndingSequenceNumber and takes no more records."""
        with self._lock:
            shard = self._shard(shard_id)
            if shard.end_seq is not None:
                raise ValueError(f"shard {shard_id} is already closed")
            last = max(shard.issued) if shard.issued else shard.start_seq
            shard.end_seq = last
            shard.closed_at = self._clock()

    def roll(self, shard_id: str) -> str:
        """Close a shard and open its single child (AWS's usual ~4-hourly rollover)."""
        with self._lock:
            self.close_shard(shard_id)
            return self.create_shard(shard_id)

    def split(self, shard_id: str) -> tuple[str, str]:
        """Close a shard and open two children whose parent it is."""
        with self._lock:
            self.close_shard(shard_id)
            return self.create_shard(shard_id), self.create_shard(shard_id)

    def trim(self, older_than_seconds: float = RETENTION_SECONDS) -> int:
        """Drop records older than the retention period; return how many went.

        Trimming runs in sequence order, as AWS's trim point only moves
        forward: it stops at a shard's first record young enough to keep. A
        closed shard left with no records leaves DescribeStream once its data
        was trimmed (or, if it never had any, once it was closed that long ago).
        """
        with self._lock:
            cutoff = self._clock() - older_than_seconds
            dropped = 0
            for shard in self._shards.values():
                keep = 0
                while keep < len(shard.records) and shard.records[keep].created_at < cutoff:
                    keep += 1
                if keep:
                    shard.trimmed_through = shard.seqs[keep - 1]
                    del shard.records[:keep], shard.seqs[:keep]
                    dropped += keep
                if shard.closed_at is None or shard.records:
                    continue
                if shard.trimmed_through is not None or shard.closed_at < cutoff:
                    shard.removed = True
            return dropped

    # --- internals ----------------------------------------------------------

    def _record_call(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, {k: v for k, v in kwargs.items() if v is not None}))

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _shard(self, shard_id: str) -> _Shard:
        shard = self._shards.get(shard_id)
        if shard is None or shard.removed:
            raise KeyError(f"no shard {shard_id!r} in this fake stream")
        return shard

    def _describe_shard(self, shard: _Shard) -> dict:
        seq_range = {"StartingSequenceNumber": seq_format(shard.start_seq)}
        if shard.end_seq is not None:
            seq_range["EndingSequenceNumber"] = seq_format(shard.end_seq)
        described: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": seq_range}
        if shard.parent_id is not None:
            described["ParentShardId"] = shard.parent_id
        return described

    def _check_stream(self, op: str, arn: str) -> None:
        if arn != self._arn:
            self._raise(op, "ResourceNotFoundException", f"Requested resource not found: Stream: {arn}")

    def _check_limit(self, op: str, limit: int | None, maximum: int) -> int:
        if limit is None:
            return maximum
        if not isinstance(limit, int) or limit < 1:
            # botocore rejects this client-side, before any request is sent.
            raise ParamValidationError(report=f"Invalid value for parameter Limit, value: {limit}, min: 1")
        if limit > maximum:
            self._raise(op, "ValidationException", f"Value '{limit}' at 'limit' must be at most {maximum}")
        return limit

    def _encode(self, shard_id: str, position: int) -> str:
        return iterator_encode(self._arn, shard_id, position, self._clock())

    def _decode(self, op: str, iterator: Any) -> tuple[str, str, int, float]:
        decoded = iterator_decode(iterator)
        if decoded is None:
            self._raise(op, "ValidationException", "Invalid ShardIterator")
        return decoded

    def _raise(self, op: str, code: str, message: str) -> NoReturn:
        self.exceptions.throw(op, code, message)
