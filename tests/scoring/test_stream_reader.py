"""The stream reader on the faithful fake: lineage, expiry, trimming, leases.

moto has one shard that never closes and no expiry or trimming, so these
behaviours are shown on tests/fakes/streams.py; the processing and state
writes still go to a real moto server.
"""

import time

import pytest

from scoring import store
from scoring.stream.leases import deaths_at, lease_take
from scoring.stream.policy import BatchRunner, FailurePolicy
from scoring.stream.reader import ReaderConfig, StreamReader
from tests.fakes.clock import Clock
from tests.fakes.streams import FakeDynamoDBStreams
from tests.records import SEED_FILTER

pytestmark = pytest.mark.usefixtures("table")

def score_keys(n: int) -> dict:
    return {"PK": {"S": f"SCORE#{n}"}, "SK": {"S": "SCORE"}}


def make_reader(fake, handled, *, worker="w1", clock=None, handle_batch=None, **config):
    return StreamReader(
        client=fake, stream_arn=fake.stream_arn, worker_id=worker,
        handle_batch=handle_batch or (
            lambda records, shard: handled.extend((shard, r["dynamodb"]["SequenceNumber"]) for r in records)),
        config=ReaderConfig(filters=SEED_FILTER, poll_interval=0, **config),
        clock=clock or Clock(), sleep=lambda s: None,
    )


def drain(reader, passes=50):
    """The reader's two steps, as Worker.run(once=True) strings them: until
    two passes in a row read nothing while every ready shard is owned."""
    idle = 0
    for _ in range(passes):
        reader.step_refresh(force=True)
        idle = 0 if reader.step_poll() else idle + 1
        if idle >= 2 and reader.drained():
            return
    raise AssertionError(f"not drained after {passes} passes")


def test_three_generations_with_a_split_are_read_once_parents_first():
    fake = FakeDynamoDBStreams()
    root = fake.create_shard()
    seqs = {root: [fake.put_record(root, keys=score_keys(i)) for i in range(5)]}
    a, b = fake.split(root)
    seqs[a] = [fake.put_record(a, keys=score_keys(10 + i)) for i in range(4)]
    seqs[b] = [fake.put_record(b, keys=score_keys(20 + i)) for i in range(3)]
    a2 = fake.roll(a)
    seqs[a2] = [fake.put_record(a2, keys=score_keys(30 + i)) for i in range(2)]
    handled = []
    reader = make_reader(fake, handled, batch_size=2)
    drain(reader)
    read = [seq for _, seq in handled]
    assert sorted(read) == sorted(s for shard in seqs.values() for s in shard)
    assert len(read) == len(set(read)), "a record was handled twice"
    position = {seq: i for i, seq in enumerate(read)}
    for parent, child in [(root, a), (root, b), (a, a2)]:
        assert max(position[s] for s in seqs[parent]) < min(position[s] for s in seqs[child])
    checkpoints = store.checkpoints_all()
    assert checkpoints[root].closed and checkpoints[a].closed  # drained, retired
    assert not checkpoints[b].closed and not checkpoints[a2].closed  # still open
    # A drained shard's checkpoint and lease expire, days after the 24 h it
    # stays listed; an open one's never do.
    from scoring.store.base import call, table_name
    from scoring.store.keys import shard_checkpoint_key, shard_lease_key

    def purge_at(key: dict) -> int | None:
        item = call("get_item", TableName=table_name(), Key=key, ConsistentRead=True)["Item"]
        return int(item["purge_at"]["N"]) if "purge_at" in item else None

    week = time.time() + store.CLOSED_SHARD_RETENTION_DAYS * 86400
    for shard in (root, a):
        for key in (shard_checkpoint_key(shard), shard_lease_key(shard)):
            assert abs(purge_at(key) - week) < 60, (shard, key)
    assert {purge_at(k(shard)) for shard in (b, a2) for k in (shard_checkpoint_key, shard_lease_key)} == {None}


def test_a_long_run_of_skipped_records_is_not_the_end_of_the_stream():
    """Our own writes (outcomes, HELD pointers, checkpoints) can fill several
    batches between two submissions: passes that only skip them are not
    drained, so `consume_scores --once` reads on to the submission."""
    fake = FakeDynamoDBStreams()
    shard = fake.create_shard()
    for n in range(7):
        fake.put_record(shard, event_name="MODIFY", keys=score_keys(n), old_image={}, new_image={})
    last = fake.put_record(shard, keys=score_keys(99))
    handled = []
    drain(make_reader(fake, handled, batch_size=2))
    assert handled == [(shard, last)]


def test_with_batches_our_own_heartbeats_fill_the_reader_still_drains():
    """A batch size of 1: every read is full while the worker's own writes
    (heartbeats, leases) keep coming. Once a read holds only such records,
    written after the reader started, the stream is drained."""
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    first = fake.put_record(shard, keys=score_keys(1), created_at=clock() - 60)

    class Chatty:
        """The fake, with one of our own writes landing before every read."""

        def __getattr__(self, name):
            return getattr(fake, name)

        def get_records(self, **kwargs):
            clock.now += 0.5
            fake.put_record(shard, event_name="MODIFY", keys={"PK": {"S": "CONSUMER"}, "SK": {"S": "WORKERS"}},
                            old_image={}, new_image={})
            return fake.get_records(**kwargs)

    handled = []
    reader = StreamReader(
        client=Chatty(), stream_arn=fake.stream_arn, worker_id="w1", clock=clock, sleep=clock.sleep,
        handle_batch=lambda records, shard_id: handled.extend(r["dynamodb"]["SequenceNumber"] for r in records),
        config=ReaderConfig(filters=SEED_FILTER, poll_interval=0, batch_size=1),
    )
    drain(reader)
    assert handled == [first]


def test_filter_skips_other_items_but_checkpoint_moves_past_them():
    fake = FakeDynamoDBStreams()
    shard = fake.create_shard()
    fake.put_record(shard, keys={"PK": {"S": "PLAYER#1"}, "SK": {"S": "TOTAL"}})
    wanted = fake.put_record(shard, keys=score_keys(1))
    fake.put_record(shard, event_name="MODIFY", keys=score_keys(1))
    last = fake.put_record(shard, keys={"PK": {"S": "CONSUMER"}, "SK": {"S": "LEASE#x"}})
    handled = []
    drain(make_reader(fake, handled))
    assert [seq for _, seq in handled] == [wanted]
    assert store.checkpoint_get(shard_id=shard).sequence_number == last


def test_restart_resumes_from_the_checkpoint():
    fake = FakeDynamoDBStreams()
    shard = fake.create_shard()
    first = [fake.put_record(shard, keys=score_keys(i)) for i in range(3)]
    handled = []
    first_reader = make_reader(fake, handled)
    drain(first_reader)
    first_reader.release_all()  # a clean shutdown
    later = [fake.put_record(shard, keys=score_keys(10 + i)) for i in range(2)]
    handled_again = []
    drain(make_reader(fake, handled_again, worker="w2"))
    assert [s for _, s in handled] == first
    assert [s for _, s in handled_again] == later


def test_expired_iterator_resumes_from_the_checkpoint():
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    fake.put_record(shard, keys=score_keys(1))
    handled = []
    reader = make_reader(fake, handled, clock=clock)
    drain(reader)
    clock.now += 16 * 60  # iterators live 15 minutes
    later = fake.put_record(shard, keys=score_keys(2))
    drain(reader)
    assert [s for _, s in handled][-1] == later
    assert len(handled) == 2
    assert reader.stats.expired_iterators == 1


def test_trimmed_records_are_counted_and_reported_never_skipped_silently(caplog):
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    handled = []
    reader = make_reader(fake, handled, clock=clock)
    drain(reader)
    fake.put_record(shard, keys=score_keys(1))
    fake.put_record(shard, keys=score_keys(2))
    clock.now += 25 * 3600  # the reader was away for longer than the retention
    kept = fake.put_record(shard, keys=score_keys(3))
    fake.trim()
    reader.owned[shard].iterator = None  # as after a restart
    store.checkpoint_put(shard_id=shard, sequence_number=str(int(kept) - 2).zfill(len(kept)))
    drain(reader)
    assert reader.stats.trimmed == 1
    assert reader.status()["stats"]["trimmed"] == 1
    assert [s for _, s in handled] == [kept]
    assert "DATA LOSS" in caplog.text


def test_a_parent_that_left_the_stream_half_read_is_reported_once(caplog):
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    parent = fake.create_shard()
    fake.put_record(parent, keys=score_keys(1))
    handled = []
    reader = make_reader(fake, handled, clock=clock)
    drain(reader)
    reader.release_all()  # the consumer stops for more than a day
    fake.put_record(parent, keys=score_keys(2))  # never read
    child = fake.roll(parent)
    clock.now += 25 * 3600
    kept = fake.put_record(child, keys=score_keys(3))
    fake.trim()  # the parent, closed a day ago, leaves DescribeStream
    later = make_reader(fake, handled, worker="w2", clock=clock)
    drain(later)
    drain(later)
    assert [s for _, s in handled][-1] == kept
    assert later.stats.trimmed == 1
    assert caplog.text.count(f"DATA LOSS: shard {parent} left the stream") == 1
    assert store.checkpoint_get(shard_id=parent).closed
    later.release_all()  # a restart: w3 takes over every shard
    drain(make_reader(fake, [], worker="w3", clock=clock))
    assert caplog.text.count(f"DATA LOSS: shard {parent}") == 1  # not again after a restart


def test_describe_stream_is_paginated_and_every_shard_is_read():
    fake = FakeDynamoDBStreams()
    shards = [fake.create_shard() for _ in range(130)]
    expected = {fake.put_record(s, keys=score_keys(i)) for i, s in enumerate(shards)}
    handled = []
    drain(make_reader(fake, handled))
    assert {s for _, s in handled} == expected
    assert sum(1 for name, _ in fake.calls if name == "describe_stream") >= 2


def test_two_workers_never_hold_the_same_shard():
    fake = FakeDynamoDBStreams()
    shards = [fake.create_shard() for _ in range(4)]
    one, two = [], []
    r1, r2 = make_reader(fake, one, worker="w1"), make_reader(fake, two, worker="w2")
    for _ in range(3):
        r1.step_refresh(force=True)
        r2.step_refresh(force=True)
    assert set(r1.owned).isdisjoint(r2.owned)
    assert set(r1.owned) | set(r2.owned) == set(shards)
    assert len(r1.owned) == len(r2.owned) == 2


def test_a_dead_workers_shards_are_taken_over_after_the_lease_expires():
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    fake.put_record(shard, keys=score_keys(1))
    one, two = [], []
    r1 = make_reader(fake, one, worker="w1", clock=clock, lease_seconds=10)
    r1.step_refresh(force=True)
    assert shard in r1.owned
    r2 = make_reader(fake, two, worker="w2", clock=clock, lease_seconds=10)
    r2.step_refresh(force=True)
    assert shard not in r2.owned
    clock.now += 11  # w1 died: no more heartbeats
    r2.step_refresh(force=True)
    assert shard in r2.owned


class WorkerDied(BaseException):
    """The process died (killed, segfault, OOM): nothing below the reader
    catches it, and the reader is never used again, its lease not released."""


def test_a_record_that_kills_the_process_is_isolated_and_its_deaths_counted(caplog):
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    seqs = [fake.put_record(shard, keys=score_keys(i)) for i in range(5)]
    poison = seqs[2]
    batches = []
    fixed = False

    def handle_batch(records, shard_id):
        got = [r["dynamodb"]["SequenceNumber"] for r in records]
        if poison in got and not fixed:
            raise WorkerDied(poison)
        batches.append(got)

    def next_worker(n):
        clock.now += 11  # the dead worker's lease expires; the next one takes over
        return make_reader(fake, [], worker=f"w{n}", clock=clock, lease_seconds=10, handle_batch=handle_batch)

    for n in range(1, 5):
        with pytest.raises(WorkerDied):
            drain(next_worker(n))
    # w1 died on the whole batch; w2 read one record at a time, so the
    # checkpoint stopped right before the poison and w3, w4 died on it alone.
    assert batches == [[seqs[0]], [seqs[1]]]
    assert store.checkpoint_get(shard_id=shard).sequence_number == seqs[1]
    lease = store.leases_all()[shard]
    assert (lease.deaths, lease.death_sequence) == (2, seqs[1])
    assert f"Its next record, {poison}, goes alone first" in caplog.text
    fixed = True  # a release that fixes the bug
    reader = next_worker(5)
    drain(reader)
    assert reader.stats.takeovers_after_death == 1
    assert batches[2:] == [[poison], [seqs[3]], [seqs[4]]]
    later = [fake.put_record(shard, keys=score_keys(10 + i)) for i in range(3)]
    drain(reader)
    assert batches[-1] == later  # back to whole batches


def test_a_clean_handover_is_not_a_death():
    fake = FakeDynamoDBStreams()
    shard = fake.create_shard()
    handled = []
    first = make_reader(fake, handled)
    first.step_refresh(force=True)
    first.release_all()  # SIGTERM: leases released
    for i in range(3):
        fake.put_record(shard, keys=score_keys(i))
    calls = []
    second = make_reader(fake, [], worker="w2", handle_batch=lambda records, shard_id: calls.append(len(records)))
    drain(second)
    assert calls == [3]
    assert second.stats.takeovers_after_death == 0
    assert store.leases_all()[shard].deaths == 0


def test_two_workers_taking_the_same_expired_lease_count_one_death_and_one_wins():
    fake = FakeDynamoDBStreams()
    shard = fake.create_shard()
    assert lease_take(shard_id=shard, owner="dead", ttl_seconds=10, seen=None, checkpoint=None, now_ms=1_000)
    seen = store.leases_get_many(shard_ids=[shard])[shard]
    takes = [lease_take(shard_id=shard, owner=w, ttl_seconds=10, seen=seen, checkpoint="42", now_ms=20_000)
             for w in ("a", "b")]
    assert takes[0] is not None and takes[1] is None
    lease = store.leases_all()[shard]
    assert (lease.owner, lease.deaths, lease.death_sequence) == ("a", 1, "42")
    assert deaths_at(lease, "42") == 1 and deaths_at(lease, "43") == 0


def test_a_worker_retrying_a_failing_record_keeps_its_lease():
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    fake.put_record(shard, keys=score_keys(1))
    rival = make_reader(fake, [], worker="w2", clock=clock, lease_seconds=10)

    def wait_between_retries(seconds):  # as consume_scores does: time passes, leases are kept
        clock.now += 4
        reader.keep_leases()
        rival.step_refresh(force=True)

    def process(records):
        raise ValueError("fails every time")

    runner = BatchRunner(process, FailurePolicy(max_retry_attempts=6), clock=clock, sleep=wait_between_retries)
    reader = make_reader(fake, [], clock=clock, lease_seconds=10, handle_batch=lambda records, s: runner.run(records))
    drain(reader)
    assert runner.dead_lettered == 1  # after 6 retries, 24 s: more than twice the lease
    assert shard in reader.owned and shard not in rival.owned


def test_a_batch_whose_lease_is_lost_meanwhile_is_given_up():
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    seq = fake.put_record(shard, keys=score_keys(1))
    rival = make_reader(fake, [], worker="w2", clock=clock, lease_seconds=10)
    written = []

    def paused_past_the_lease(records, shard_id):
        clock.now += 11  # a pause longer than the lease: the rival takes the shard
        rival.step_refresh(force=True)
        reader.keep_leases()  # the next thing a retrying worker does
        written.extend(records)

    reader = make_reader(fake, [], clock=clock, lease_seconds=10, handle_batch=paused_past_the_lease)
    reader.step_refresh(force=True)
    reader.step_poll()
    assert written == []
    assert reader.stats.batches_abandoned == 1
    assert shard not in reader.owned and shard in rival.owned
    assert store.checkpoint_get(shard_id=shard) is None  # the rival reads the record again
    got = []
    drain(make_reader(fake, got, worker="w2", clock=clock, lease_seconds=10))
    assert [s for _, s in got] == [seq]


def test_a_shard_lost_while_another_shards_batch_retried_is_skipped_not_a_crash():
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shards = [fake.create_shard() for _ in range(2)]
    for shard in shards:
        fake.put_record(shard, keys=score_keys(1))
    rival = make_reader(fake, [], worker="w2", clock=clock, lease_seconds=10)
    handled = []
    taken = []

    def handle_batch(records, shard_id):
        handled.append(shard_id)
        if not taken:  # a pause past the leases: the rival takes the shard not in hand
            clock.now += 11
            other = next(s for s in shards if s != shard_id)
            assert lease_take(shard_id=other, owner="w2", ttl_seconds=10,
                                    seen=store.leases_get_many(shard_ids=[other])[other], checkpoint=None,
                                    now_ms=int(clock.now * 1000))
            taken.append(other)
            reader.keep_leases()  # renews the shard in hand, finds the other one gone

    reader = make_reader(fake, [], clock=clock, lease_seconds=10, handle_batch=handle_batch)
    reader.step_refresh(force=True)
    assert set(reader.owned) == set(shards)
    reader.step_poll()  # must not raise KeyError for the shard lost meanwhile
    assert handled == [s for s in shards if s != taken[0]]
    assert set(reader.owned) == {handled[0]} and rival.worker_id == "w2"


def backlog_reader(records: int, *, batch_size: int):
    """A shard holding ``records`` submissions, and a reader of it that keeps
    each batch's sequence numbers: (fake, sequence numbers, batches, reader)."""
    fake = FakeDynamoDBStreams()
    shard = fake.create_shard()
    seqs = [fake.put_record(shard, keys=score_keys(i)) for i in range(records)]
    batches = []
    reader = make_reader(fake, [], batch_size=batch_size, handle_batch=lambda records, shard_id: batches.append(
        [r["dynamodb"]["SequenceNumber"] for r in records]))
    return fake, seqs, batches, reader


def test_a_backlog_is_gathered_into_batches_of_several_reads():
    """As Lambda's BatchSize above 1,000: GetRecords pages of at most 1,000
    records, read on while the shard has more, up to the batch size."""
    fake, seqs, batches, reader = backlog_reader(2_500, batch_size=2_000)
    drain(reader)
    assert [len(b) for b in batches] == [2_000, 500]
    assert [s for b in batches for s in b] == seqs
    limits = [kwargs["Limit"] for name, kwargs in fake.calls if name == "get_records"]
    assert limits[:3] == [1_000, 1_000, 1_000] and max(limits) == 1_000


def test_at_the_tip_a_large_batch_is_what_one_read_finds():
    fake, seqs, batches, reader = backlog_reader(3, batch_size=10_000)
    reader.step_refresh(force=True)
    reader.step_poll()
    assert batches == [seqs]
    assert sum(1 for name, _ in fake.calls if name == "get_records") == 1  # no waiting for more


def test_reading_ahead_stops_at_a_read_of_our_own_writes_made_after_we_started():
    """After a backlog, `consume_scores --once` meets its own writes (outcomes,
    TOTALs): a full read of them, made since it started, is the tip, so a
    large batch does not read through all of them before it is handled."""
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    submissions = [fake.put_record(shard, keys=score_keys(i), created_at=clock() - 60) for i in range(1_000)]
    handled = []
    reader = make_reader(fake, handled, clock=clock, batch_size=10_000)
    clock.now += 5
    for i in range(3_000):
        fake.put_record(shard, event_name="MODIFY", keys=score_keys(i), old_image={}, new_image={})
    reader.step_refresh(force=True)
    assert reader.step_poll()
    assert [s for _, s in handled] == submissions
    assert reader.stats.records_read == 2_000  # the backlog, and one read of our own writes
    assert reader.owned[shard].at_tip


def test_a_long_read_keeps_its_lease():
    """Gathering a large batch takes several reads; the leases are renewed
    between them, so a rival cannot take the shard meanwhile."""
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    for i in range(3_000):
        fake.put_record(shard, keys=score_keys(i))
    rival = make_reader(fake, [], worker="w2", clock=clock, lease_seconds=10)

    class Slow:
        """The fake, with each read taking 4 s, while the rival looks for shards."""

        def __getattr__(self, name):
            return getattr(fake, name)

        def get_records(self, **kwargs):
            clock.now += 4
            rival.step_refresh(force=True)
            return fake.get_records(**kwargs)

    handled = []
    reader = StreamReader(
        client=Slow(), stream_arn=fake.stream_arn, worker_id="w1", clock=clock, sleep=clock.sleep,
        handle_batch=lambda records, shard_id: handled.append(len(records)),
        config=ReaderConfig(filters=SEED_FILTER, poll_interval=0, batch_size=10_000, lease_seconds=10),
    )
    reader.step_refresh(force=True)
    reader.step_poll()  # 4 reads, 16 s: longer than the lease
    assert handled == [3_000]
    assert shard in reader.owned and shard not in rival.owned
    assert reader.stats.batches_abandoned == 0


def test_after_a_holder_died_a_page_goes_one_record_at_a_time_then_batches_are_large_again():
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock)
    shard = fake.create_shard()
    seqs = [fake.put_record(shard, keys=score_keys(i)) for i in range(2_500)]
    dead = make_reader(fake, [], worker="dead", clock=clock, lease_seconds=10)
    dead.step_refresh(force=True)  # takes the lease, then dies without releasing it
    clock.now += 11
    batches = []
    reader = make_reader(fake, [], worker="w2", clock=clock, lease_seconds=10, batch_size=10_000,
                         handle_batch=lambda records, shard_id: batches.append(len(records)))
    drain(reader)
    assert reader.stats.takeovers_after_death == 1
    assert batches == [1] * 1_000 + [1_500]
    assert store.checkpoint_get(shard_id=shard).sequence_number == seqs[-1]


def test_short_pages_of_a_predecessors_writes_are_not_the_end_of_the_stream():
    """DynamoDB ends a GetRecords page at 1 MB: a run of large records (our
    predecessor's TOTAL and outcome MODIFYs, with both images) comes in
    short pages, which `consume_scores --once` must read past to the
    submission behind them."""
    clock = Clock()
    fake = FakeDynamoDBStreams(clock=clock, page_bytes=5_000)
    shard = fake.create_shard()
    image = {"PK": {"S": "PLAYER#1"}, "SK": {"S": "TOTAL"}, "recent": {"S": "x" * 900}}
    for _ in range(40):  # about 1.9 KB each: two a page
        fake.put_record(shard, event_name="MODIFY", keys={"PK": image["PK"], "SK": image["SK"]},
                        old_image=image, new_image=image, created_at=clock() - 60)
    last = fake.put_record(shard, keys=score_keys(1))
    handled = []
    drain(make_reader(fake, handled, clock=clock, batch_size=1_000))
    assert handled == [(shard, last)]
