"""The consume loop's steps, one at a time: the worker of consume_scores on a
real moto table, with the stream from tests/fakes/streams.py."""

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from scoring import store
from scoring.domain import Status, Submission
from scoring.stream.policy import FailurePolicy
from scoring.stream.reader import BatchAbandoned, ReaderConfig, StreamReader
from scoring.stream.worker import Worker, WorkerConfig
from tests.fakes.clock import Clock
from tests.fakes.streams import FakeDynamoDBStreams
from tests.records import SEED_FILTER

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

class Live:
    """The after-batch step's interface (scoring/live.py), recording calls."""

    def __init__(self):
        self.batches, self.heals, self.heartbeats = [], 0, 0

    def after_batch(self, result):
        self.batches.append(result)

    def heal_if_stale(self):
        self.heals += 1

    def heartbeat(self):
        self.heartbeats += 1


def worker(streams, clock, live, worker_id="w1", **policy) -> Worker:
    config = WorkerConfig(reader=ReaderConfig(filters=SEED_FILTER, poll_interval=0.25, lease_seconds=9),
                          policy=FailurePolicy(**policy), progress_every=3600)
    return Worker(stream_arn=streams.stream_arn, worker_id=worker_id, config=config, live=live,
                  streams_client=streams, clock=clock, sleep=clock.sleep)


def submitted(streams, shard, sub_id: str, task: str = "warm-up-sums") -> None:
    submission = Submission(id=sub_id, player_id="p1", player_name="P1", task=task, submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    item = store.submission_to_item(submission)
    streams.put_record(shard, keys={"PK": item["PK"], "SK": item["SK"]}, new_image=item)


def test_run_once_drains_the_stream_applies_each_submission_and_stops():
    clock, live, streams = Clock(), Live(), FakeDynamoDBStreams()
    shard = streams.create_shard()
    for i in range(3):
        submitted(streams, shard, f"s{i}")
    w = worker(streams, clock, live)
    w.run(once=True)
    assert (w.applied, w.rejected) == (3, 0)
    assert store.totals_get_many(player_ids=["p1"])["p1"].total == 30
    assert [len(r.applied) for r in live.batches] == [3] and live.heals >= 1
    assert w.drained() and shard in w.reader.owned


def test_one_step_at_a_time():
    clock, live, streams = Clock(), Live(), FakeDynamoDBStreams()
    shard = streams.create_shard()
    w = worker(streams, clock, live)
    assert w.step() is False and shard in w.reader.owned  # took the lease; nothing to read yet
    submitted(streams, shard, "s1")
    assert w.step() is True and store.score_get(submission_id="s1").status is Status.APPLIED
    assert w.step() is False


class RefusingStreams(FakeDynamoDBStreams):
    """DynamoDB Streams throttling every read, as AWS does with LimitExceededException."""

    refusing = True

    def describe_stream(self, **kwargs):
        if self.refusing:
            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "slow down"}}, "DescribeStream")
        return super().describe_stream(**kwargs)


def test_an_outage_backs_off_growing_and_capped_then_the_worker_resumes():
    clock, live, streams = Clock(), Live(), RefusingStreams()
    shard = streams.create_shard()
    submitted(streams, shard, "s1")
    w = worker(streams, clock, live)
    assert [w.step_safely(force_refresh=True) for _ in range(6)] == [None] * 6
    assert w.outages == 6 and all(0 <= s <= w.reader.config.renew_interval for s in clock.slept)
    streams.refusing = False
    assert w.step_safely(force_refresh=True) is True and w.outages == 0
    assert store.score_get(submission_id="s1").status is Status.APPLIED


def test_waiting_between_retries_keeps_the_leases_and_gives_the_batch_up_when_stopping():
    clock, live, streams = Clock(), Live(), FakeDynamoDBStreams()
    shard = streams.create_shard()
    w = worker(streams, clock, live)
    w.step()
    expires = store.leases_all()[shard].expires_at_ms
    start = clock.now
    w.retry_wait(20)  # more than twice the lease
    assert clock.now >= start + 20 and shard in w.reader.owned
    assert store.leases_all()[shard].expires_at_ms > expires
    w.stop()
    with pytest.raises(BatchAbandoned):
        w.retry_wait(5)


def test_stop_between_passes_ends_run_and_shutdown_hands_the_shards_back():
    clock, live, streams = Clock(), Live(), FakeDynamoDBStreams()
    shard = streams.create_shard()
    w = worker(streams, clock, live)
    w.step()
    w.stop()
    w.run()  # returns at once
    w.shutdown()
    assert store.leases_all()[shard].expires_at_ms == 0 and w.reader.owned == {}


def iterator_age(shard: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("gamescores_consumer_iterator_age_seconds", {"shard": shard})


def test_a_batch_stuck_in_retries_reports_a_growing_iterator_age():
    # Retried for ever (Lambda's default): the shard makes no progress, and
    # its age must grow for the alert to see it, not stay at the last read's.
    clock, live = Clock(), Live()
    streams = FakeDynamoDBStreams(clock=clock)
    shard = streams.create_shard()
    submitted(streams, shard, "s1")
    w = worker(streams, clock, live, max_retry_attempts=-1)
    ages = []

    def failing(records):
        ages.append(iterator_age(shard))
        if len(ages) == 8:
            w.stop()  # the next wait gives the batch up
        raise ValueError("poison")

    w.runner.process = failing
    w.step()  # gives the batch up, stopping: its records stay after the checkpoint
    assert store.score_get(submission_id="s1").status is Status.PENDING
    # Before the first attempt nothing was reported; then one value per wait.
    waited = ages[1:]
    assert all(a is not None for a in waited) and waited == sorted(waited) and waited[-1] - waited[0] >= 5, ages
    assert waited[-1] >= sum(clock.slept[:-1]) - 1, (ages, clock.slept)


def test_a_shard_no_longer_owned_drops_its_iterator_age():
    clock, live = Clock(), Live()
    streams = FakeDynamoDBStreams(clock=clock)
    shard = streams.create_shard()
    submitted(streams, shard, "s1")
    w = worker(streams, clock, live)
    assert w.step() is True and iterator_age(shard) is not None
    streams.close_shard(shard)
    # Closed and drained: retired on the next read; its series goes with it.
    w.step()
    assert shard not in w.reader.owned and iterator_age(shard) is None


def test_the_totals_cache_is_used_only_while_the_worker_reads_every_shard():
    clock, live, streams = Clock(), Live(), FakeDynamoDBStreams()
    mine, other = streams.create_shard(), streams.create_shard()
    submitted(streams, mine, "s1")
    w = worker(streams, clock, live)
    w.run(once=True)
    assert w.known_totals() is w.totals_cache and len(w.totals_cache) == 1
    # Another worker holds a shard: its batches write TOTALs too, so ours
    # would go stale. The cache is emptied and left out.
    store.lease_release(shard_id=other, owner="w1")
    assert store.lease_acquire(shard_id=other, owner="w2", ttl_seconds=3600, now_ms=int(clock() * 1000))
    w.reader.step_refresh(force=True)
    assert other not in w.reader.owned
    assert w.known_totals() is None and len(w.totals_cache) == 0
    submitted(streams, mine, "s2")
    assert w.step() is True
    assert len(w.totals_cache) == 0 and store.totals_get_many(player_ids=["p1"])["p1"].total == 20


def test_a_batch_that_outlasts_the_lease_keeps_it():
    """A large batch on a slow table can take longer than the lease: the
    worker renews it between the batch's steps, so no rival takes the shard
    and reads the same records meanwhile."""
    clock = Clock()
    streams = FakeDynamoDBStreams(clock=clock)
    shard = streams.create_shard()
    submitted(streams, shard, "s1")
    rival = StreamReader(client=streams, stream_arn=streams.stream_arn, worker_id="w2", handle_batch=None,
                         config=ReaderConfig(filters=SEED_FILTER, lease_seconds=9), clock=clock, sleep=clock.sleep)

    class SlowLive(Live):
        def after_batch(self, result):  # the boards' update, then the events: 6 s each
            super().after_batch(result)
            slow_step()

    def slow_step(*args):
        clock.now += 6
        rival.step_refresh(force=True)

    w = worker(streams, clock, SlowLive())
    w.publish = slow_step
    start = clock()
    assert w.step() is True
    assert clock() - start >= 12  # longer than the 9 s lease
    assert shard in w.reader.owned and shard not in rival.owned
    assert store.score_get(submission_id="s1").status is Status.APPLIED
    assert store.leases_all()[shard].expires_at_ms >= int((start + 12 + 9) * 1000)  # renewed before the outcomes


def test_a_lease_renewal_that_fails_during_a_batch_does_not_fail_the_batch(monkeypatch):
    """Renewing is not the records' business: a throttled heartbeat in the
    middle of a batch is logged and tried again, and the batch commits (the
    failure policy would otherwise retry it, and dead-letter it at last)."""
    clock = Clock()
    streams = FakeDynamoDBStreams(clock=clock)
    shard = streams.create_shard()
    submitted(streams, shard, "s1")
    refusals = []

    def throttled(**kwargs):
        refusals.append(kwargs["worker_id"])
        raise store.StoreUnavailable("DynamoDB put_item failed: ProvisionedThroughputExceededException")

    class SlowLive(Live):
        def after_batch(self, result):  # the boards' update takes a while; meanwhile DynamoDB throttles
            super().after_batch(result)
            clock.now += 4
            monkeypatch.setattr(store, "worker_heartbeat", throttled)

    w = worker(streams, clock, SlowLive(), max_retry_attempts=0)
    assert w.step() is True
    assert refusals == ["w1"]
    assert store.score_get(submission_id="s1").status is Status.APPLIED
    assert w.runner.dead_lettered == 0 and shard in w.reader.owned


def test_a_batch_whose_shard_is_taken_while_its_totals_are_written_is_given_up_and_counted_once(monkeypatch):
    """A pause longer than the lease in the middle of a batch's TOTAL writes:
    a rival takes the shard, the worker finds out at its next keep-alive,
    finishes the writes in flight and gives the batch up without its
    outcomes or checkpoint; the rival's replay counts each submission once."""
    from scoring import processing

    clock = Clock()
    streams = FakeDynamoDBStreams(clock=clock)
    shard = streams.create_shard()
    for n in range(4):
        submission = Submission(id=f"s{n}", player_id=f"p{n}", player_name=f"P{n}", task="warm-up-sums",
                                submitted_at=datetime.now(UTC))
        store.score_put(submission=submission)
        item = store.submission_to_item(submission)
        streams.put_record(shard, keys={"PK": item["PK"], "SK": item["SK"]}, new_image=item)
    # The rival's clock is the paused worker's plus the pause: it takes the
    # shard first, and then the worker's clock moves past its renewal.
    rival_clock = Clock()
    rival = worker(streams, rival_clock, Live(), worker_id="w2")
    real, paused = store.totals.total_put_if_version, []

    def paused_past_the_lease(*, total, expected_version):
        if not paused:
            paused.append(total.player_id)
            rival_clock.now = clock.now + 11
            rival.reader.step_refresh(force=True)
            clock.now += 4
        return real(total=total, expected_version=expected_version)

    monkeypatch.setattr(processing, "KEEP_ALIVE_SECONDS", 0.01)
    monkeypatch.setattr(store.totals, "total_put_if_version", paused_past_the_lease)
    w = worker(streams, clock, Live())
    assert w.step() is False
    assert w.reader.stats.batches_abandoned == 1 and shard not in w.reader.owned and shard in rival.reader.owned
    assert store.checkpoint_get(shard_id=shard) is None
    assert {store.score_get(submission_id=f"s{n}").status for n in range(4)} == {Status.PENDING}
    monkeypatch.undo()
    rival.run(once=True)
    assert {store.score_get(submission_id=f"s{n}").status for n in range(4)} == {Status.APPLIED}
    assert [t.total for t in store.totals_get_many(player_ids=[f"p{n}" for n in range(4)]).values()] == [10] * 4
