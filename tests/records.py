"""Stream records as DynamoDB Streams delivers them, for tests: one builder.

The shape is GetRecords' (and, with a number for the creation time and
``eventSourceARN``, a Lambda event's): ``Keys`` always, ``NewImage`` except
on REMOVE, ``OldImage`` except on INSERT. ``ttl=True`` makes the record of a
Time to Live deletion, which AWS marks with a service ``userIdentity``.
"""

from datetime import UTC, datetime

from scoring import store
from scoring.domain import Submission

# The seed's filter: what the processor lets through (gameapp settings'
# STREAM_FILTERS default), written out so tests pin it.
SEED_FILTER = [{"eventName": ["INSERT"], "dynamodb": {"Keys": {"PK": {"S": [{"prefix": "SCORE#"}]}}}}]

# What AWS puts in a record of an item that Time to Live deleted.
TTL_USER_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def stream_record(submission: Submission | None = None, *, seq: str = "1", event: str = "INSERT",
                  item: dict | None = None, keys: dict | None = None, created: datetime | None = None,
                  ttl: bool = False) -> dict:
    """A record of ``submission``'s SCORE item, or of a raw ``item``
    (AttributeValue JSON); ``keys`` default to the item's PK and SK."""
    if submission is not None:
        item = store.submission_to_item(submission)
    item = item if item is not None else {}
    keys = keys if keys is not None else {k: item[k] for k in ("PK", "SK") if k in item}
    data = {"Keys": keys, "SequenceNumber": seq, "ApproximateCreationDateTime": created or datetime.now(UTC),
            "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if event != "REMOVE":
        data["NewImage"] = item
    if event != "INSERT":
        data["OldImage"] = item
    record = {"eventName": event, "eventSource": "aws:dynamodb", "eventVersion": "1.1", "awsRegion": "us-east-1",
              "dynamodb": data}
    if ttl:
        record["userIdentity"] = dict(TTL_USER_IDENTITY)
    return record
