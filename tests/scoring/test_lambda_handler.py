"""The Lambda handler against a real moto server, fed a Lambda-shaped event."""

import copy
import json
from pathlib import Path

import pytest

from scoring import catalog, lambda_handler, store
from scoring.domain import Status
from scoring.models import Task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

EVENT_PATH = Path(__file__).parent.parent / "events" / "dynamodb_stream_insert.json"


@pytest.fixture
def stream_event(table):
    """The fixture event, its SCORE items already in the table as the stream saw them."""
    event = json.loads(EVENT_PATH.read_text())
    for record in event["Records"]:
        store.client().put_item(TableName=table, Item=record["dynamodb"]["NewImage"])
    return event


def total_of(player_id):
    total = store.totals_get_many(player_ids=[player_id]).get(player_id)
    return total.total if total else None


def sequence_numbers(records):
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def test_batch_succeeds_with_no_failures_and_applies_points(stream_event):
    assert lambda_handler.handler(stream_event, None) == {"batchItemFailures": []}
    # warm-up-sums is Easy (10), big-products is Hard (50); the MODIFY adds nothing.
    assert total_of("p-ada") == 10 + 50
    assert total_of("p-bob") == 50 + 10
    assert store.score_get(submission_id="sub-2").status is Status.APPLIED
    assert store.score_get(submission_id="sub-2").points == 50


def test_replayed_event_does_not_double_count(stream_event):
    lambda_handler.handler(stream_event, None)
    assert lambda_handler.handler(stream_event, None) == {"batchItemFailures": []}
    assert total_of("p-ada") == 60
    assert total_of("p-bob") == 60


def test_malformed_record_reports_itself_and_every_later_record(stream_event):
    event = copy.deepcopy(stream_event)
    del event["Records"][1]["dynamodb"]["NewImage"]["player_id"]

    response = lambda_handler.handler(event, None)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(event["Records"][1:])
    # Records before the poison one were applied; Lambda will redeliver the rest.
    assert total_of("p-ada") == 10
    assert total_of("p-bob") is None
    assert store.score_get(submission_id="sub-3").status is Status.PENDING


def test_store_failure_is_reported_and_redelivery_applies_once(stream_event, monkeypatch):
    real_put = store.total_put_if_version

    def put_failing_on_sub3(*, total, expected_version):
        if "sub-3" in total.pending:
            raise store.StoreUnavailable("throttled")
        return real_put(total=total, expected_version=expected_version)

    # Where the version-checked retry loop (store.total_change) looks it up.
    monkeypatch.setattr(store.totals, "total_put_if_version", put_failing_on_sub3)
    response = lambda_handler.handler(stream_event, None)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequence_numbers(stream_event["Records"][2:])
    # The failed half's other player was committed beside it (the TOTALs
    # are written side by side): its record comes back with the half, is
    # found in that TOTAL's pending map, and is not added again.
    assert (total_of("p-ada"), total_of("p-bob")) == (10, 60)

    monkeypatch.undo()
    # Lambda resumes from the lowest reported sequence number.
    redelivered = {"Records": stream_event["Records"][2:]}
    assert lambda_handler.handler(redelivered, None) == {"batchItemFailures": []}
    assert (total_of("p-ada"), total_of("p-bob")) == (60, 60)


def test_handler_publishes_the_batch_events(stream_event, monkeypatch):
    published = []
    monkeypatch.setattr(lambda_handler.events, "publisher_from_settings", lambda: published.extend)
    lambda_handler.handler(stream_event, None)
    assert sorted((e.type, e.submission_id, e.points) for e in published) == [
        ("ScoreApplied", "sub-1", 10), ("ScoreApplied", "sub-2", 50),
        ("ScoreApplied", "sub-3", 50), ("ScoreApplied", "sub-4", 10)]


def test_events_of_a_failed_publish_are_sent_by_the_retry(stream_event, monkeypatch):
    attempts, published = [], []

    def publish_failing_first(events):
        attempts.append(events)
        if len(attempts) == 1:
            raise RuntimeError("EventBridge down")
        published.extend(events)

    monkeypatch.setattr(lambda_handler.events, "publisher_from_settings", lambda: publish_failing_first)
    lambda_handler.handler(stream_event, None)
    assert {e.submission_id for e in published} == {"sub-1", "sub-2", "sub-3", "sub-4"}


def test_modify_records_are_not_processed(stream_event, monkeypatch):
    calls = []
    real = lambda_handler.processing.records_process
    monkeypatch.setattr(lambda_handler.processing, "records_process",
                        lambda records, **kw: calls.append(sequence_numbers(records)) or real(records, **kw))
    lambda_handler.handler(stream_event, None)
    assert calls == [sequence_numbers([r for r in stream_event["Records"] if r["eventName"] == "INSERT"])]


def test_inactive_task_still_scores_and_deleted_task_is_rejected(stream_event):
    Task.objects.filter(slug="warm-up-sums").update(active=False)
    Task.objects.filter(slug="big-products").delete()
    lambda_handler.handler(stream_event, None)
    assert total_of("p-ada") == 10
    assert store.score_get(submission_id="sub-2").status is Status.REJECTED


def test_points_lookup_loads_the_catalog_in_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        points_for = catalog.points_lookup()
    assert points_for("warm-up-sums") == 10
    assert points_for("big-products") == 50
    assert points_for("no-such-task") is None
