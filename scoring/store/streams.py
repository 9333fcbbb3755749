"""DynamoDB Streams calls: shards, iterators and records, through the store's
error mapping. Each takes the Streams client (``streams_client()``, or one a
test passes in), so that a fake with AWS's semantics can stand in for shard
splits and iterator expiry, which moto cannot show."""

from dataclasses import dataclass

from scoring.store.base import call

# GetRecords returns at most this many records a call (and at most 1 MB).
GET_RECORDS_LIMIT = 1000


@dataclass(slots=True)
class Shard:
    shard_id: str
    parent_id: str | None
    closed: bool


def shards_describe(*, client, stream_arn: str) -> dict[str, Shard]:
    """Every shard of the stream. DescribeStream returns at most 100 a page."""
    shards: dict[str, Shard] = {}
    start = None
    while True:
        kwargs = {"StreamArn": stream_arn, "Limit": 100}
        if start:
            kwargs["ExclusiveStartShardId"] = start
        description = call("describe_stream", client=client, **kwargs)["StreamDescription"]
        for raw in description.get("Shards", []):
            shards[raw["ShardId"]] = Shard(shard_id=raw["ShardId"], parent_id=raw.get("ParentShardId"),
                                           closed="EndingSequenceNumber" in raw.get("SequenceNumberRange", {}))
        start = description.get("LastEvaluatedShardId")
        if not start:
            return shards


def shard_iterator(*, client, stream_arn: str, shard_id: str, after: str | None = None,
                   position: str = "TRIM_HORIZON") -> str:
    """An iterator just after sequence number ``after``, or at ``position``
    (TRIM_HORIZON, LATEST). DataTrimmed if ``after`` is past retention."""
    kwargs = {"StreamArn": stream_arn, "ShardId": shard_id}
    if after:
        kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
    else:
        kwargs["ShardIteratorType"] = position
    return call("get_shard_iterator", client=client, **kwargs)["ShardIterator"]


def records_get(*, client, iterator: str, limit: int) -> tuple[list[dict], str | None]:
    """Up to ``limit`` (at most GET_RECORDS_LIMIT) records and the next
    iterator (None: the shard is closed and drained). IteratorExpired after 15 minutes; DataTrimmed if
    the records are past retention."""
    response = call("get_records", client=client, ShardIterator=iterator, Limit=limit)
    return response.get("Records", []), response.get("NextShardIterator")
