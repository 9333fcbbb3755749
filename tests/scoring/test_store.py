"""The store against a real moto server: the one door's errors, and Time to
Live on housekeeping items only."""

import io
import time
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from scoring import lambda_handler, processing, store
from scoring.domain import Status, Submission
from scoring.stream.filters import matches_any
from tests.records import stream_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

DAY = 86400


def submission(sub_id: str, task: str = "easy") -> Submission:
    return Submission(id=sub_id, player_id="p1", player_name="P1", task=task, submitted_at=datetime.now(UTC))


def raw(key: dict) -> dict:
    return store.call("get_item", TableName=store.table_name(), Key=key, ConsistentRead=True)["Item"]


def housekeeping_items() -> dict[str, dict]:
    """One of each item that expires, made the way the product makes them."""
    rejected = submission("r1", task="gone")
    store.score_put(submission=rejected)
    processing.records_process([stream_record(rejected)], points_for=lambda task: None)
    store.dlq_put(record=stream_record(submission("d1"), seq="77"), error="boom", attempts=3)
    store.worker_heartbeat(worker_id="w1", ttl_seconds=10, status={})
    [pointer] = list(store.base.query_all(store.keys.REJECTED_PK, ""))
    return {"DLQ": next(store.dlq_items()), "REJECTED": pointer,
            "WORKER": next(store.stream_items(sk_prefix="WORKER#"))}


def test_the_table_is_created_with_time_to_live_on_the_expiry_attribute():
    assert store.ttl_attribute() == store.PURGE_AT == "purge_at"
    store.table_ensure()  # idempotent: enabling it again is not an error
    assert store.ttl_attribute() == store.PURGE_AT


def test_housekeeping_items_expire_after_their_retention_and_ledger_items_never():
    now = time.time()
    items = housekeeping_items()
    retention = {"DLQ": settings.DLQ_RETENTION_DAYS * DAY, "REJECTED": settings.REJECTED_RETENTION_DAYS * DAY,
                 "WORKER": settings.WORKER_RETENTION_HOURS * 3600}
    for kind, item in items.items():
        assert abs(int(item[store.PURGE_AT]["N"]) - (now + retention[kind])) < 60, kind
    applied = submission("a1")
    store.score_put(submission=applied)
    processing.records_process([stream_record(applied)], points_for=lambda task: 10)
    assert store.score_get(submission_id="a1").status is Status.APPLIED
    for key in (store.score_key("a1"), store.score_key("r1"), store.total_key("p1")):
        assert store.PURGE_AT not in raw(key), key


def test_the_records_of_time_to_live_deletions_never_pass_the_processors_filter(monkeypatch):
    deletions = [stream_record(item=item, event="REMOVE", seq=str(i), ttl=True)
                 for i, item in enumerate(housekeeping_items().values())]
    # Even one of a SCORE item, which never carries purge_at: a REMOVE is not a submission.
    deletions.append(stream_record(submission("x1"), event="REMOVE", seq="9", ttl=True))
    assert not [r for r in deletions if matches_any(r, settings.STREAM_FILTERS)]
    processed = []
    monkeypatch.setattr(lambda_handler.processing, "records_process", lambda records, **kw: processed.extend(records))
    assert lambda_handler.handler({"Records": deletions}, None) == {"batchItemFailures": []}
    assert processed == []


def test_a_refused_condition_carries_the_stored_item():
    store.score_put(submission=submission("c1"))
    with pytest.raises(store.SubmissionExists) as caught:
        store.score_put(submission=submission("c1", task="other"))
    assert caught.value.existing.task == "easy"


def test_a_request_dynamodb_refuses_is_a_store_error_not_a_botocore_one():
    with pytest.raises(store.StoreError) as caught:
        store.call("get_item", TableName=store.table_name(), Key={"nope": {"S": "x"}})
    assert not isinstance(caught.value, store.StoreUnavailable) and caught.value.code


def test_a_missing_table_is_unavailable():
    with override_settings(DYNAMODB_TABLE="no-such-table"), pytest.raises(store.StoreUnavailable):
        store.score_get(submission_id="x")


@pytest.mark.parametrize(("read", "what"), [
    (lambda: store.score_get(submission_id="x"), "DynamoDB get_item"),
    (lambda: store.table_item_count(), "DynamoDB scan"),
    (lambda: store.items_get_many([{"PK": {"S": "x"}, "SK": {"S": "x"}}]), "DynamoDB batch_get_item"),
])
def test_a_missing_table_is_named_with_the_command_that_creates_it(read, what):
    with override_settings(DYNAMODB_TABLE="no-such-table"), pytest.raises(store.StoreUnavailable) as caught:
        read()
    assert str(caught.value) == (f"{what} failed: table 'no-such-table' not found (ResourceNotFoundException); "
                                 "`manage.py init_dynamodb` creates it")


def test_a_missing_table_other_than_the_settings_one_names_its_own_init_dynamodb():
    with pytest.raises(store.StoreUnavailable, match=r"table 'other-table' not found \(ResourceNotFoundException\); "
                                                    r"`manage.py init_dynamodb --table other-table` creates it$"):
        store.call("describe_table", TableName="other-table")


@pytest.mark.parametrize("name", ["", " "])
def test_init_dynamodb_refuses_an_empty_table_name_instead_of_using_the_default(name):
    with pytest.raises(CommandError, match=r"^--table is empty: give a table name, or leave --table out for "
                                           rf"settings.DYNAMODB_TABLE \({settings.DYNAMODB_TABLE}\)\.$"):
        call_command("init_dynamodb", "--table", name, stdout=io.StringIO())


def test_a_missing_stream_or_shard_is_not_called_a_missing_table():
    with pytest.raises(store.StoreUnavailable) as caught:
        store.records_get(client=RefusingStreams("ResourceNotFoundException"), iterator="it", limit=10)
    assert str(caught.value) == "DynamoDB get_records failed: ResourceNotFoundException"


class RefusingStreams:
    """A Streams client that answers every call with one of AWS's documented
    error codes, as botocore raises them."""

    def __init__(self, code: str):
        self.code = code

    def __getattr__(self, operation):
        def refuse(**kwargs):
            raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, operation)
        return refuse


@pytest.mark.parametrize(("code", "error"), [("ExpiredIteratorException", store.IteratorExpired),
                                             ("TrimmedDataAccessException", store.DataTrimmed),
                                             ("LimitExceededException", store.StoreUnavailable)])
def test_stream_reads_map_awss_errors_to_the_stores(code, error):
    with pytest.raises(error) as caught:
        store.records_get(client=RefusingStreams(code), iterator="it", limit=10)
    assert caught.value.code == code
    with pytest.raises(error):
        store.shard_iterator(client=RefusingStreams(code), stream_arn="arn", shard_id="s", after="1")


def test_the_real_stream_is_read_through_the_store():
    submission_put = submission("s1")
    store.score_put(submission=submission_put)
    client, arn = store.streams_client(), store.stream_arn()
    [shard_id] = store.shards_describe(client=client, stream_arn=arn)
    records, _ = store.records_get(client=client, limit=10,
                                   iterator=store.shard_iterator(client=client, stream_arn=arn, shard_id=shard_id))
    assert [store.submission_id_of_record(r) for r in records] == ["s1"]


def test_workers_dead_for_an_hour_leave_the_registry_only_when_a_consumer_prunes_it():
    now = int(time.time() * 1000)
    store.worker_heartbeat(worker_id="gone", ttl_seconds=10, status={}, now_ms=now - 2 * 3_600_000)
    store.worker_heartbeat(worker_id="live", ttl_seconds=10, status={}, now_ms=now)

    def registered() -> set[str]:
        return set(store.keys.worker_registry_expiries(raw(store.worker_registry_key())))

    # The web's readers (readiness, the pipeline page) only read: their role may not update.
    assert store.workers_alive(now_ms=now) == {"live": now + 10_000}
    assert registered() == {"gone", "live"}
    assert store.workers_alive(now_ms=now, prune=True) == {"live": now + 10_000}
    assert registered() == {"live"}
