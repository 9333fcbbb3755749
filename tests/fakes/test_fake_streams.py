"""The fake DynamoDB Streams client keeps AWS's documented semantics.

These tests pin the fake itself, so reader tests built on it can trust it.
"""

from datetime import datetime

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.fakes.streams import FakeDynamoDBStreams


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    return FakeDynamoDBStreams(clock=clock, table_name="scores")


def key(n: int) -> dict:
    return {"PK": {"S": f"SCORE#{n}"}, "SK": {"S": "SCORE"}}


def iterator(fake, shard_id, kind="TRIM_HORIZON", seq=None) -> str:
    kwargs = {"SequenceNumber": seq} if seq is not None else {}
    response = fake.get_shard_iterator(StreamArn=fake.stream_arn, ShardId=shard_id, ShardIteratorType=kind, **kwargs)
    return response["ShardIterator"]


def pks(records) -> list[str]:
    return [r["dynamodb"]["Keys"]["PK"]["S"] for r in records]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_describe_stream_paginates_250_shards_in_three_pages_of_at_most_100(fake):
    created = [fake.create_shard() for _ in range(250)]
    seen, pages, start = [], [], None
    while True:
        kwargs = {"ExclusiveStartShardId": start} if start else {}
        description = fake.describe_stream(StreamArn=fake.stream_arn, Limit=100, **kwargs)["StreamDescription"]
        pages.append(len(description["Shards"]))
        seen.extend(s["ShardId"] for s in description["Shards"])
        start = description.get("LastEvaluatedShardId")
        if start is None:
            break
    assert pages == [100, 100, 50]
    assert seen == created  # each shard once, in creation order
    assert len(set(seen)) == 250


def test_describe_stream_shape_and_default_page_size(fake):
    first = fake.create_shard()
    fake.put_record(first, keys=key(1))
    for _ in range(100):
        fake.create_shard()
    description = fake.describe_stream(StreamArn=fake.stream_arn)["StreamDescription"]
    assert len(description["Shards"]) == 100
    assert description["LastEvaluatedShardId"] == description["Shards"][-1]["ShardId"]
    assert description["StreamStatus"] == "ENABLED"
    assert description["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert description["TableName"] == "scores"
    assert description["KeySchema"][0] == {"AttributeName": "PK", "KeyType": "HASH"}
    shard = description["Shards"][0]
    assert shard["ShardId"] == first
    assert "ParentShardId" not in shard
    assert set(shard["SequenceNumberRange"]) == {"StartingSequenceNumber"}  # open: no ending number
    assert shard["ShardId"].startswith("shardId-") and len(shard["ShardId"]) >= 28


def test_trim_horizon_reads_every_record_in_order_with_the_real_shape(fake):
    shard = fake.create_shard()
    seqs = [fake.put_record(shard, keys=key(n), new_image={**key(n), "points": {"N": str(n)}}) for n in range(5)]
    response = fake.get_records(ShardIterator=iterator(fake, shard))
    records = response["Records"]
    assert pks(records) == [f"SCORE#{n}" for n in range(5)]
    assert [r["dynamodb"]["SequenceNumber"] for r in records] == seqs
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs) and len(set(seqs)) == 5
    assert all(s.isdigit() and len(s) >= 21 for s in seqs)
    first = records[0]
    assert first["eventName"] == "INSERT"
    assert first["eventVersion"] == "1.1"
    assert first["eventSource"] == "aws:dynamodb"
    assert first["awsRegion"] == "us-east-1"
    assert first["dynamodb"]["NewImage"]["points"] == {"N": "0"}
    assert "OldImage" not in first["dynamodb"]
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], datetime)
    assert first["dynamodb"]["ApproximateCreationDateTime"].timestamp() == 1_700_000_000
    assert first["dynamodb"]["SizeBytes"] > 0
    assert first["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert response["NextShardIterator"]  # open shard: keep polling


def test_modify_and_remove_carry_the_images_aws_sends(fake):
    shard = fake.create_shard()
    fake.put_record(shard, event_name="MODIFY", keys=key(1), old_image={**key(1), "v": {"N": "1"}})
    fake.put_record(shard, event_name="REMOVE", keys=key(1))
    modify, remove = fake.get_records(ShardIterator=iterator(fake, shard))["Records"]
    assert modify["eventName"] == "MODIFY"
    assert modify["dynamodb"]["OldImage"]["v"] == {"N": "1"}
    assert modify["dynamodb"]["NewImage"] == key(1)
    assert remove["eventName"] == "REMOVE"
    assert "NewImage" not in remove["dynamodb"] and remove["dynamodb"]["OldImage"] == key(1)


def test_sequence_numbers_increase_across_shards_and_shard_ranges_are_distinct(fake):
    a = fake.create_shard()
    b = fake.create_shard()
    seqs = [fake.put_record(s, keys=key(n)) for n, s in enumerate([a, b, a, b])]
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)
    shards = fake.describe_stream(StreamArn=fake.stream_arn)["StreamDescription"]["Shards"]
    starts = [s["SequenceNumberRange"]["StartingSequenceNumber"] for s in shards]
    assert len(set(starts)) == 2
    assert all(int(start) < int(seqs[0]) for start in starts)


def test_after_sequence_number_resumes_after_that_record(fake):
    shard = fake.create_shard()
    seqs = [fake.put_record(shard, keys=key(n)) for n in range(4)]
    records = fake.get_records(ShardIterator=iterator(fake, shard, "AFTER_SEQUENCE_NUMBER", seqs[1]))["Records"]
    assert pks(records) == ["SCORE#2", "SCORE#3"]
    at = fake.get_records(ShardIterator=iterator(fake, shard, "AT_SEQUENCE_NUMBER", seqs[1]))["Records"]
    assert pks(at) == ["SCORE#1", "SCORE#2", "SCORE#3"]


def test_latest_sees_only_records_written_after_the_iterator(fake):
    shard = fake.create_shard()
    fake.put_record(shard, keys=key(0))
    fake.put_record(shard, keys=key(1))
    latest = iterator(fake, shard, "LATEST")
    fake.put_record(shard, keys=key(2))
    assert pks(fake.get_records(ShardIterator=latest)["Records"]) == ["SCORE#2"]


def test_open_shard_without_new_records_returns_empty_list_and_an_iterator(fake):
    shard = fake.create_shard()
    fake.put_record(shard, keys=key(0))
    first = fake.get_records(ShardIterator=iterator(fake, shard))
    empty = fake.get_records(ShardIterator=first["NextShardIterator"])
    assert empty["Records"] == []
    assert empty["NextShardIterator"]
    fake.put_record(shard, keys=key(1))
    assert pks(fake.get_records(ShardIterator=empty["NextShardIterator"])["Records"]) == ["SCORE#1"]


def test_closed_shard_drains_then_next_shard_iterator_is_none(fake):
    shard = fake.create_shard()
    seqs = [fake.put_record(shard, keys=key(n)) for n in range(5)]
    fake.close_shard(shard)
    description = fake.describe_stream(StreamArn=fake.stream_arn)["StreamDescription"]
    assert description["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"] == seqs[-1]
    first = fake.get_records(ShardIterator=iterator(fake, shard), Limit=3)
    assert pks(first["Records"]) == ["SCORE#0", "SCORE#1", "SCORE#2"]
    assert first["NextShardIterator"]
    last = fake.get_records(ShardIterator=first["NextShardIterator"], Limit=3)
    assert pks(last["Records"]) == ["SCORE#3", "SCORE#4"]
    assert last.get("NextShardIterator") is None
    with pytest.raises(ValueError):
        fake.put_record(shard, keys=key(9))


def test_empty_closed_shard_ends_at_its_start_and_drains_at_once(fake):
    shard = fake.create_shard()
    fake.close_shard(shard)
    rng = fake.describe_stream(StreamArn=fake.stream_arn)["StreamDescription"]["Shards"][0]["SequenceNumberRange"]
    assert rng["EndingSequenceNumber"] == rng["StartingSequenceNumber"]
    response = fake.get_records(ShardIterator=iterator(fake, shard))
    assert response["Records"] == [] and response.get("NextShardIterator") is None


def test_iterator_expires_15_minutes_after_it_was_issued(fake, clock):
    shard = fake.create_shard()
    fake.put_record(shard, keys=key(0))
    it = iterator(fake, shard)
    clock.advance(14 * 60 + 59)
    fresh = fake.get_records(ShardIterator=it)["NextShardIterator"]  # still valid, issues a new one
    clock.advance(2)
    with pytest.raises(ClientError) as excinfo:
        fake.get_records(ShardIterator=it)
    assert error_code(excinfo) == "ExpiredIteratorException"
    assert excinfo.value.operation_name == "GetRecords"
    assert isinstance(excinfo.value, fake.exceptions.ExpiredIteratorException)
    assert fake.get_records(ShardIterator=fresh)["Records"] == []  # the newer iterator is still good


def test_trimmed_sequence_numbers_raise_trimmed_data_access(fake, clock):
    shard = fake.create_shard()
    old = [fake.put_record(shard, keys=key(n)) for n in range(3)]
    clock.advance(25 * 3600)
    fresh = fake.put_record(shard, keys=key(3))
    assert fake.trim() == 3
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        with pytest.raises(ClientError) as excinfo:
            iterator(fake, shard, kind, old[0])
        assert error_code(excinfo) == "TrimmedDataAccessException"
        assert excinfo.value.operation_name == "GetShardIterator"
    records = fake.get_records(ShardIterator=iterator(fake, shard))["Records"]
    assert [r["dynamodb"]["SequenceNumber"] for r in records] == [fresh]


def test_iterator_whose_records_were_trimmed_before_use_raises(fake, clock):
    shard = fake.create_shard()
    fake.put_record(shard, keys=key(0))
    clock.advance(24 * 3600 - 60)
    it = iterator(fake, shard)  # points at the record about to be trimmed
    clock.advance(120)
    fake.trim()
    with pytest.raises(ClientError) as excinfo:
        fake.get_records(ShardIterator=it)
    assert error_code(excinfo) == "TrimmedDataAccessException"


def test_fully_trimmed_closed_shard_leaves_describe_stream(fake, clock):
    old = fake.create_shard()
    fake.put_record(old, keys=key(0))
    child = fake.roll(old)
    clock.advance(25 * 3600)
    fake.put_record(child, keys=key(1))
    fake.trim()
    shards = fake.describe_stream(StreamArn=fake.stream_arn)["StreamDescription"]["Shards"]
    assert [s["ShardId"] for s in shards] == [child]
    assert shards[0]["ParentShardId"] == old  # the lineage still names the vanished parent
    with pytest.raises(ClientError) as excinfo:
        iterator(fake, old)
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_split_closes_the_parent_and_creates_two_children(fake):
    parent = fake.create_shard()
    last = fake.put_record(parent, keys=key(0))
    a, b = fake.split(parent)
    shards = {s["ShardId"]: s for s in fake.describe_stream(StreamArn=fake.stream_arn)["StreamDescription"]["Shards"]}
    assert list(shards) == [parent, a, b]
    assert shards[parent]["SequenceNumberRange"]["EndingSequenceNumber"] == last
    assert shards[a]["ParentShardId"] == parent and shards[b]["ParentShardId"] == parent
    assert "EndingSequenceNumber" not in shards[a]["SequenceNumberRange"]
    assert int(shards[a]["SequenceNumberRange"]["StartingSequenceNumber"]) > int(last)
    with pytest.raises(ValueError):
        fake.split(parent)  # a closed shard cannot split again


def test_unknown_shard_or_stream_is_resource_not_found(fake):
    fake.create_shard()
    with pytest.raises(ClientError) as excinfo:
        iterator(fake, "shardId-00000000000000000000-deadbeef")
    assert error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        fake.describe_stream(StreamArn=fake.stream_arn.replace("scores", "other"))
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert excinfo.value.operation_name == "DescribeStream"


def test_limits_are_respected_and_enforced(fake):
    shard = fake.create_shard()
    for n in range(7):
        fake.put_record(shard, keys=key(n))
    first = fake.get_records(ShardIterator=iterator(fake, shard), Limit=3)
    assert pks(first["Records"]) == ["SCORE#0", "SCORE#1", "SCORE#2"]
    second = fake.get_records(ShardIterator=first["NextShardIterator"], Limit=3)
    assert pks(second["Records"]) == ["SCORE#3", "SCORE#4", "SCORE#5"]
    with pytest.raises(ClientError) as excinfo:
        fake.get_records(ShardIterator=iterator(fake, shard), Limit=1001)
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        fake.describe_stream(StreamArn=fake.stream_arn, Limit=101)
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ParamValidationError):
        fake.get_records(ShardIterator=iterator(fake, shard), Limit=0)


def test_bad_requests_are_validation_errors(fake):
    shard = fake.create_shard()
    seq = fake.put_record(shard, keys=key(0))
    other = fake.create_shard()
    for bad in ("not-an-iterator", "fakeiter:!!!", ""):
        with pytest.raises(ClientError) as excinfo:
            fake.get_records(ShardIterator=bad)
        assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        iterator(fake, shard, "AFTER_SEQUENCE_NUMBER")
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        iterator(fake, other, "AT_SEQUENCE_NUMBER", seq)  # a number from another shard
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(TypeError):
        fake.get_records("positional")  # boto3 methods take keywords only


def test_calls_are_recorded_with_their_arguments(fake):
    shard = fake.create_shard()
    it = iterator(fake, shard)
    fake.get_records(ShardIterator=it, Limit=5)
    assert fake.calls == [
        ("get_shard_iterator", {"StreamArn": fake.stream_arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        ("get_records", {"ShardIterator": it, "Limit": 5}),
    ]


def test_last_evaluated_shard_id_only_when_more_shards_follow(fake):
    created = [fake.create_shard() for _ in range(100)]
    description = fake.describe_stream(StreamArn=fake.stream_arn, Limit=100)["StreamDescription"]
    assert [s["ShardId"] for s in description["Shards"]] == created
    assert "LastEvaluatedShardId" not in description
    after = fake.describe_stream(StreamArn=fake.stream_arn, ExclusiveStartShardId=created[-1])["StreamDescription"]
    assert after["Shards"] == [] and "LastEvaluatedShardId" not in after
