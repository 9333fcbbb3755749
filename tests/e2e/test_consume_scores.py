"""`manage.py consume_scores` as a real process against a real moto server."""

import signal
import socket
import time
import uuid
from datetime import UTC, datetime

import pytest

from scoring import store
from scoring.domain import Status, Submission
from tests.e2e.chaos import log_tail, wait_for_log
from tests.waiting import wait_until


def put(player="p1", task="warm-up-sums"):
    submission = Submission(id=str(uuid.uuid4()), player_id=player, player_name=player.upper(), task=task,
                            submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    return submission


def stream_records_after(sequence_number: str | None) -> list[dict]:
    """Every stream record after a sequence number, read straight from moto."""
    client = store.streams_client()
    arn = store.stream_arn()
    shard = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": sequence_number} if sequence_number \
        else {"ShardIteratorType": "TRIM_HORIZON"}
    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard, **kwargs)["ShardIterator"]
    records = []
    while True:
        response = client.get_records(ShardIterator=iterator, Limit=1000)
        records += response["Records"]
        if not response["Records"]:
            return records
        iterator = response["NextShardIterator"]


def test_once_drains_applies_and_exits(run_consumer_once):
    a, b, gone = put("p1"), put("p1", "big-products"), put("p2", "no-such-task")
    result = run_consumer_once()
    assert result.returncode == 0, result.stderr[-2000:]
    assert store.score_get(submission_id=a.id).points == 10
    assert store.score_get(submission_id=b.id).points == 50
    assert store.score_get(submission_id=gone.id).status is Status.REJECTED
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 60
    assert "records/s=" in result.stderr


def test_consumers_own_writes_leave_nothing_to_process(run_consumer_once):
    """No recursion: the totals, outcomes, checkpoints and leases written by a
    drain are all in the stream, and none of them passes the filter."""
    for i in range(5):
        put(f"p{i % 2}")
    assert run_consumer_once().returncode == 0
    checkpoint = next(iter(store.checkpoints_all().values()))
    own_writes = stream_records_after(checkpoint.sequence_number)
    assert own_writes, "the drain's own writes should be in the stream after its checkpoint"
    from django.conf import settings

    from scoring.stream.filters import matches_any, parse_patterns

    assert not [r for r in own_writes if matches_any(r, parse_patterns(settings.STREAM_FILTERS))]
    second = run_consumer_once()
    assert second.returncode == 0
    assert "applied=0 rejected=0" in second.stderr
    assert store.totals_get_many(player_ids=["p0"])["p0"].total == 30


def test_sigterm_finishes_cleanly_with_exit_0(start_consumer):
    put()
    consumer = start_consumer()
    wait_until(lambda: store.totals_get_many(player_ids=["p1"]).get("p1"), interval=0.2,
               message=log_tail(consumer))
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    log = open(consumer.log_path).read()
    assert "stopped cleanly" in log
    assert not store.leases_all() or all(lease.expires_at_ms == 0 for lease in store.leases_all().values())


def test_sigterm_while_retrying_a_failing_record_stops_without_dead_lettering_it(start_consumer):
    # A SCORE item the consumer cannot read: its record raises on every try.
    store.client().put_item(TableName=store.table_name(), Item={**store.score_key("broken"), "type": {"S": "SCORE"}})
    # Many retries, each waiting longer: a stop must not burn through them.
    consumer = start_consumer(env={"STREAM_MAX_RETRY_ATTEMPTS": "50"})
    wait_for_log(consumer, "retry 3 in")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=15) == 0, log_tail(consumer)()
    log = open(consumer.log_path).read()
    assert "Gave up a batch" in log and "stopped cleanly" in log
    assert store.dlq_all() == []  # not the record's fault: the next owner tries it again


def test_once_beside_a_running_consumer_says_so_and_exits_instead_of_waiting_for_ever(start_consumer,
                                                                                      run_consumer_once):
    running = start_consumer()
    wait_until(store.leases_all, interval=0.2, message=log_tail(running))
    started = time.monotonic()
    once = run_consumer_once(timeout=60)
    assert once.returncode == 1, once.stderr[-3000:]
    assert "--once drains the stream alone, but 1 other consumer(s) hold shards of the stream" in once.stderr
    assert "Traceback" not in once.stderr
    assert time.monotonic() - started < 40  # three lease periods (STREAM_LEASE_SECONDS=3) and start-up
    put()
    wait_until(lambda: store.totals_get_many(player_ids=["p1"]).get("p1"), interval=0.2, message=log_tail(running))


@pytest.mark.slow
def test_killed_workers_shards_are_taken_over_and_nothing_is_applied_twice(start_consumer):
    first = start_consumer(log_name="w1.log")
    wait_until(store.leases_all, interval=0.2, message=log_tail(first))
    second = start_consumer(log_name="w2.log")
    owner = next(iter(store.leases_all().values())).owner
    victim, survivor = (first, second) if str(first.pid) in owner else (second, first)
    early = [put(f"p{i % 3}") for i in range(30)]
    # Kill it once it has applied some of them, so the survivor takes over
    # after work done (and maybe a batch in flight). A fixed sleep could, on
    # a busy machine, kill it before it had applied any.
    wait_until(lambda: any(stored.status is Status.APPLIED for stored in
                           store.scores_get_many(submission_ids=[s.id for s in early]).values()),
               interval=0.05, message=log_tail(victim))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    late = [put(f"p{i % 3}") for i in range(30)]

    def survivor_holds_every_lease():
        leases = store.leases_all()
        return leases and all(str(survivor.pid) in lease.owner for lease in leases.values())

    # Timed to the takeover itself: applying the 60 records afterwards
    # takes as long as a loaded machine makes it, which is no lease's doing.
    wait_until(survivor_holds_every_lease, timeout=40, message=log_tail(survivor))
    taken_over_after = time.monotonic() - killed_at
    wait_until(lambda: all(stored.status is Status.APPLIED for stored in
                           store.scores_get_many(submission_ids=[s.id for s in early + late]).values()),
               timeout=40, interval=0.3, message=log_tail(survivor))
    lease = next(iter(store.leases_all().values()))
    assert str(survivor.pid) in lease.owner
    assert taken_over_after < 3 + 10  # STREAM_LEASE_SECONDS=3 in consumer_env, plus a refresh
    totals = store.totals_get_many(player_ids=["p0", "p1", "p2"])
    assert sum(t.total for t in totals.values()) == 60 * 10
    assert {p: t.total for p, t in totals.items()} == {"p0": 200, "p1": 200, "p2": 200}


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-size", "0"], "--batch-size must be between 1 and 10,000"),
    (["--batch-size", "-1"], "--batch-size must be between 1 and 10,000"),
    (["--progress-every", "-5"], "--progress-every must be >= 0 seconds, not -5"),
    (["--progress-every", "nan"], "--progress-every must be >= 0 seconds, not nan"),
    (["--metrics-port", "70000"], "--metrics-port 70000: give a port from 1 to 65535"),
    (["--metrics-port", "0"], "--metrics-port 0: give a port from 1 to 65535"),
])
def test_a_bad_option_is_refused_in_one_line_before_reading_the_stream(run_consumer_once, args, message):
    result = run_consumer_once(*args)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().startswith(f"CommandError: {message}"), result.stderr[-2000:]
    assert "\n" not in result.stderr.strip()
    assert not store.checkpoints_all()


def test_a_metrics_port_in_use_is_refused_in_one_line(run_consumer_once):
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_consumer_once("--metrics-port", str(port))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"CommandError: --metrics-port {port} is already in use: stop " \
                                                     "what serves on it, or give another port."
