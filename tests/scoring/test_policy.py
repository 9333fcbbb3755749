"""Failing batches: bisect, retry with backoff, dead-letter, and move on."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scoring import store
from scoring.domain import PlayerTotal, Status, Submission
from scoring.stream.policy import BatchRunner, FailurePolicy
from tests.records import stream_record

pytestmark = pytest.mark.usefixtures("table")


def record(seq: str, sub_id: str | None = None, created: datetime | None = None) -> dict:
    sub_id = sub_id or f"s{seq}"
    submission = Submission(id=sub_id, player_id="p1", player_name="P1", task="easy", submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    return stream_record(submission, seq=seq, created=created)


def runner(process, sleeps, **policy):
    return BatchRunner(process, FailurePolicy(**policy), sleep=sleeps.append)


def test_bisect_isolates_the_poison_record_and_the_rest_are_processed():
    records = [record(str(i)) for i in range(8)]
    processed, sleeps = [], []

    def process(batch):
        if any(r["dynamodb"]["SequenceNumber"] == "5" for r in batch):
            raise ValueError("poison")
        processed.extend(r["dynamodb"]["SequenceNumber"] for r in batch)

    run = runner(process, sleeps, max_retry_attempts=2)
    run.run(records)
    assert sorted(processed) == ["0", "1", "2", "3", "4", "6", "7"]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]  # backoff grows
    dlq = store.dlq_all()
    assert [d.sequence_number for d in dlq] == ["5"]
    assert dlq[0].attempts == 3 and "poison" in dlq[0].error
    settled = store.score_get(submission_id="s5")
    assert settled.status is Status.REJECTED and "poison" in settled.error
    assert run.dead_lettered == 1


def test_a_dead_letter_already_counted_in_the_total_is_settled_as_applied():
    rec = record("1", "counted")
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="P1", total=25, version=1,
                                                 pending={"counted": 25}), expected_version=0)
    runner(lambda batch: (_ for _ in ()).throw(ValueError("after commit")), [], max_retry_attempts=0).run([rec])
    settled = store.score_get(submission_id="counted")
    assert (settled.status, settled.points) == (Status.APPLIED, 25)


def test_a_dead_letter_whose_rejection_the_total_records_keeps_that_error():
    rec = record("1", "decided")
    store.total_put_if_version(total=PlayerTotal(player_id="p1", player_name="P1", version=1, on_leaderboard=False,
                                                 rejected={"decided": "Task 'easy' no longer exists."}),
                               expected_version=0)
    runner(lambda batch: (_ for _ in ()).throw(ValueError("after commit")), [], max_retry_attempts=0).run([rec])
    settled = store.score_get(submission_id="decided")
    assert (settled.status, settled.error) == (Status.REJECTED, "Task 'easy' no longer exists.")


def test_a_dead_letter_racing_another_workers_commit_follows_it(monkeypatch):
    from scoring.processing import records_process
    from scoring.store import totals

    rec = record("1", "raced")
    real_put, real_outcomes = totals.total_put_if_version, store.scores_put_outcomes
    fired = []

    def other_worker_first(**kwargs):
        # Between the dead letter's TOTAL read and its write, another worker
        # commits the submission as applied and dies before writing outcomes.
        if not fired:
            fired.append(True)
            monkeypatch.setattr(store, "scores_put_outcomes", lambda **kw: None)
            records_process([rec], points_for=lambda task: 10)
            monkeypatch.setattr(store, "scores_put_outcomes", real_outcomes)
        return real_put(**kwargs)

    monkeypatch.setattr(totals, "total_put_if_version", other_worker_first)
    runner(lambda batch: (_ for _ in ()).throw(ValueError("boom")), [], max_retry_attempts=0).run([rec])
    monkeypatch.undo()
    settled = store.score_get(submission_id="raced")
    total = store.totals_get_many(player_ids=["p1"])["p1"]
    assert (settled.status, settled.points, total.total) == (Status.APPLIED, 10, 10)


def test_an_outage_is_not_dead_lettered():
    def process(batch):
        raise store.StoreUnavailable("DynamoDB down")

    with pytest.raises(store.StoreUnavailable):
        runner(process, [], max_retry_attempts=0).run([record("1")])
    assert store.dlq_all() == []
    assert store.score_get(submission_id="s1").status is Status.PENDING


def test_records_older_than_the_maximum_age_go_to_the_dead_letters():
    old = record("1", created=datetime.now(UTC) - timedelta(hours=2))
    fresh = record("2")
    processed = []
    runner(lambda batch: processed.extend(batch), [], max_record_age=3600).run([old, fresh])
    assert [r["dynamodb"]["SequenceNumber"] for r in processed] == ["2"]
    assert [d.sequence_number for d in store.dlq_all()] == ["1"]


def test_dead_letters_one_after_another_do_not_grow_the_total():
    """A backlog past its maximum age is dead-lettered record by record: each
    rejection is recorded in the TOTAL, and forgotten once its SCORE says
    so, or the item would grow to DynamoDB's limit and stop the shard."""
    old = datetime.now(UTC) - timedelta(hours=2)
    records = [record(str(i), created=old) for i in range(30)]
    runner(lambda batch: pytest.fail("expired records are not processed"), [], max_record_age=3600).run(records)
    assert {store.score_get(submission_id=f"s{i}").status for i in range(30)} == {Status.REJECTED}
    total = store.totals_get_many(player_ids=["p1"])["p1"]
    assert list(total.rejected) == ["s29"] and total.version == 30


def test_a_dead_letter_dynamodb_refuses_to_settle_is_left_pending_and_the_shard_moves_on(monkeypatch, caplog):
    """A refusal that would come again (an item past its size limit) is not
    an outage: retried as one, the shard would stop for good."""
    records = [record(str(i)) for i in range(3)]
    real = store.score_settle_failed

    def settle(*, record, **kwargs):
        if record["dynamodb"]["SequenceNumber"] == "1":
            raise store.StoreError("put_item failed: ValidationException: Item size has exceeded the maximum")
        return real(record=record, **kwargs)

    monkeypatch.setattr(store, "score_settle_failed", settle)
    processed = []

    def process(batch):
        if any(r["dynamodb"]["SequenceNumber"] == "1" for r in batch):
            raise ValueError("poison")
        processed.extend(r["dynamodb"]["SequenceNumber"] for r in batch)

    run = runner(process, [], max_retry_attempts=0)
    run.run(records)  # returns: nothing for the worker to take for an outage
    assert sorted(processed) == ["0", "2"] and (run.dead_lettered, run.unsettled) == (1, 1)
    assert [d.sequence_number for d in store.dlq_all()] == ["1"]
    assert store.score_get(submission_id="s1").status is Status.PENDING  # for redrive_pending
    assert "redrive_pending" in caplog.text


def test_retrying_forever_still_stops_at_the_maximum_age():
    created = datetime.now(UTC)
    rec = record("1", created=created)
    now = [created.timestamp()]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds
        assert len(sleeps) < 100, "still retrying long past the maximum age"

    def process(batch):
        raise ValueError("poison")

    run = BatchRunner(process, FailurePolicy(max_retry_attempts=-1, max_record_age=30), clock=lambda: now[0],
                      sleep=sleep)
    run.run([rec])
    assert run.dead_lettered == 1
    assert now[0] - created.timestamp() <= 30 + 10  # stopped within one backoff of the limit
    [dead] = store.dlq_all()
    assert "MaximumRecordAgeInSeconds=30" in dead.error and dead.attempts == len(sleeps) + 1


def test_a_record_whose_stored_item_is_malformed_is_dead_lettered_and_settled():
    from scoring.processing import records_process

    submission = Submission(id="bad", player_id="p1", player_name="P1", task="easy", submitted_at=datetime.now(UTC))
    item = store.submission_to_item(submission)
    item["submitted_at"] = {"S": "not-a-date"}
    store.client().put_item(TableName=store.table_name(), Item=item)
    rec = stream_record(item=item, seq="9")
    run = runner(lambda batch: records_process(batch, points_for=lambda task: 10), [], max_retry_attempts=1)
    run.run([rec])  # must not raise: a crash here would stop the shard on every restart
    assert [d.sequence_number for d in store.dlq_all()] == ["9"]
    raw = store.client().get_item(TableName=store.table_name(), Key=store.score_key("bad"))["Item"]
    assert raw["status"]["S"] == "rejected" and "PoisonRecord" in raw["error"]["S"]


def test_on_failure_destination_can_be_an_sqs_queue(moto_server):
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    run = BatchRunner(lambda batch: (_ for _ in ()).throw(ValueError("bad")),
                      FailurePolicy(max_retry_attempts=0, on_failure_sqs_url=url), sqs_client=sqs, sleep=lambda s: None)
    run.run([record("9")])
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(messages[0]["Body"])
    assert body["record"]["dynamodb"]["SequenceNumber"] == "9"
    assert "bad" in body["error"]
    assert store.dlq_all() == []
