"""The staff pipeline page and its retry action."""

from datetime import UTC, datetime

import pytest

from scoring import processing, store
from scoring.domain import Status, Submission, retry_id
from tests.records import stream_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]


def rejected_submission(sub_id="r1"):
    submission = Submission(id=sub_id, player_id="p1", player_name="P1", task="gone",
                            submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    record = stream_record(submission, seq="1")
    processing.records_process([record], points_for=lambda task: None)
    assert store.score_get(submission_id=sub_id).status is Status.REJECTED
    return submission


def test_pipeline_page_is_for_staff_only(client, player):
    assert client.get("/ops/pipeline/").status_code == 302
    client.force_login(player)
    response = client.get("/ops/pipeline/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_pipeline_page_lists_workers_rejected_and_dead_letters(admin_client):
    rejected_submission()
    store.worker_heartbeat(worker_id="w-1", ttl_seconds=30, status={
        "shards": {"shardId-1": {"lag_ms": 120, "checkpoint": "42"}}, "stats": {"records_read": 7},
        "history": [[1, 0, 100], [6, 5, 120], [11, 7, 90]]})
    store.dlq_put(record={"dynamodb": {"SequenceNumber": "99", "Keys": store.score_key("r1")}}, error="boom",
                  attempts=4)
    page = admin_client.get("/ops/pipeline/").content.decode()
    assert 'data-worker-id="w-1"' in page and "shardId-1" in page and "<polyline" in page
    assert 'data-submission-id="r1"' in page and "no longer exists" in page
    assert 'data-sequence="99"' in page and "boom" in page


def test_a_worker_that_lost_records_to_the_stream_says_how_to_redrive_them(admin_client):
    status = {"shards": {}, "history": []}
    store.worker_heartbeat(worker_id="w-1", ttl_seconds=30, status={**status, "stats": {"trimmed": 0}})
    assert 'data-role="trimmed"' not in admin_client.get("/ops/pipeline/").content.decode()
    store.worker_heartbeat(worker_id="w-1", ttl_seconds=30, status={**status, "stats": {"trimmed": 2}})
    page = admin_client.get("/ops/pipeline/").content.decode()
    assert 'data-role="trimmed"' in page and "python manage.py redrive_pending --dry-run" in page


def test_admin_index_links_to_the_pipeline(admin_client):
    assert "/ops/pipeline/" in admin_client.get("/admin/").content.decode()


def test_retry_resubmits_a_rejected_submission_exactly_once(admin_client):
    rejected_submission()
    response = admin_client.post("/ops/pipeline/retry/r1/", follow=True)
    assert "back in the pipeline" in response.content.decode()
    retry = store.score_get(submission_id=retry_id("r1"))
    assert (retry.status, retry.retry_of, retry.task) == (Status.PENDING, "r1", "gone")
    assert store.score_get(submission_id="r1").status is Status.REJECTED  # kept for the record
    again = admin_client.post("/ops/pipeline/retry/r1/", follow=True)
    assert "already retried" in again.content.decode()
    assert 'data-role="retried"' in again.content.decode()
    # The retry is a new INSERT; processing it (twice: a replay) applies it once.
    record = stream_record(retry, seq="2")
    processing.records_process([record], points_for=lambda task: 25)
    processing.records_process([record], points_for=lambda task: 25)
    assert store.score_get(submission_id=retry.id).points == 25
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 25


def test_retry_of_an_applied_submission_changes_nothing(admin_client):
    submission = Submission(id="a1", player_id="p1", player_name="P1", task="easy", submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    record = stream_record(submission, seq="1")
    processing.records_process([record], points_for=lambda task: 10)
    admin_client.post("/ops/pipeline/retry/a1/")
    assert store.score_get(submission_id="a1").status is Status.APPLIED


def test_retry_needs_post_and_staff(client, admin_client):
    assert admin_client.get("/ops/pipeline/retry/r1/").status_code == 405
    assert client.post("/ops/pipeline/retry/r1/").status_code == 302


def test_staff_tables_scroll_inside_the_page_at_phone_width(admin_client):
    for path in ("/ops/review/", "/ops/pipeline/"):
        page = admin_client.get(path).content.decode()
        assert page.count("<table") == page.count('<div class="table-scroll"><table') > 0, path
