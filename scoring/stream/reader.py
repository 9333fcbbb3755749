"""Reads a DynamoDB Stream: polls the shards this worker leases, hands each
batch on, and checkpoints.

Modelled on what AWS documents for Streams (and on bloop's reader). Which
shards may be read is ``shards.py`` (lineage: parents before children,
retired shards); who reads them, and what a holder's death means, is
``leases.py``. Each shard's progress is a checkpoint of sequence numbers,
never iterators. The consume loop around it is ``worker.py``; the reader's
own steps (``step_refresh``, ``step_poll``) return "anything to do right
away?", so tests can drive one step at a time.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from scoring import store
from scoring.store import Shard
from scoring.stream.filters import matches_any
from scoring.stream.leases import deaths_at, lease_take
from scoring.stream.shards import gone_parents, ready_shards, start_position

logger = logging.getLogger("scoring.stream")

# Heartbeat samples kept for the pipeline page: at one per refresh (<= 5 s),
# about the last ten minutes.
HISTORY_SAMPLES = 120


class BatchAbandoned(Exception):
    """The batch in hand is given up without an outcome: its shard's lease
    was lost meanwhile, or the worker is stopping. Its records stay after
    the checkpoint for whoever reads the shard next."""


# Lambda's largest BatchSize for a DynamoDB stream. A batch this size is
# gathered from several GetRecords pages (store.GET_RECORDS_LIMIT each).
BATCH_SIZE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    batch_size: int = 100  # 1 to BATCH_SIZE_MAX
    batching_window: float = 0.0
    starting_position: str = "TRIM_HORIZON"  # for shards never seen before
    filters: list = field(default_factory=list)
    lease_seconds: float = 10.0
    poll_interval: float = 0.25  # Lambda polls each shard 4 times a second
    refresh_interval: float = 5.0  # how often to look for new shards
    checkpoint_interval: float = 60.0  # most seconds between checkpoints over skipped records

    @property
    def renew_interval(self) -> float:
        """How often leases are renewed, and the longest a worker may wait
        between renewals: a third of the lease."""
        return self.lease_seconds / 3


@dataclass(slots=True)
class ShardProgress:
    iterator: str | None = None
    last_sequence: str | None = None
    lag_ms: int | None = None
    checkpointed_at: float = 0.0
    # Earlier holders that died with the shard at the checkpoint we start
    # from: while > 0, records go one at a time (see _one_at_a_time).
    deaths: int = 0
    # The last read found the shard's tip (see _read_batch): it came back
    # empty, or held only our own writes made since the reader started. A
    # short page of older ones is not the tip: more may follow them.
    at_tip: bool = False
    # The creation time (epoch s) of the newest record of the batch in hand,
    # while it is being processed: a batch stuck in retries ages (lags_ms).
    in_hand_created: float | None = None


@dataclass(slots=True)
class ReaderStats:
    records_read: int = 0
    records_matched: int = 0
    batches: int = 0
    trimmed: int = 0
    expired_iterators: int = 0
    shards_retired: int = 0
    takeovers_after_death: int = 0
    batches_abandoned: int = 0
    errors: int = 0


class StreamReader:
    def __init__(
        self,
        *,
        client,
        stream_arn: str,
        worker_id: str,
        handle_batch: Callable[[list[dict], str], None],
        config: ReaderConfig = ReaderConfig(),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.stream_arn = stream_arn
        self.worker_id = worker_id
        self.handle_batch = handle_batch
        self.config = config
        self.clock = clock
        self.started_at = clock()  # what "drained" measures against (see drained)
        self.sleep = sleep
        self.shards: dict[str, Shard] = {}
        self.retired: set[str] = set()
        self.owned: dict[str, ShardProgress] = {}
        self.stats = ReaderStats()
        self.history: list[tuple[int, int, int]] = []
        self._next_refresh = 0.0
        self._next_renewal = 0.0
        self._in_hand: str | None = None  # the shard whose batch is being handled
        self._gone_parents_checked: set[str] = set()

    # --- step 1: shards and leases ------------------------------------------

    def step_refresh(self, *, force: bool = False) -> bool:
        """Find shards, heartbeat, renew our leases and take a fair share.

        Returns True if this worker gained a shard.
        """
        now = self.clock()
        if not force and now < self._next_refresh:
            return False
        self._next_refresh = now + min(self.config.refresh_interval, self.config.renew_interval)
        self.shards = store.shards_describe(client=self.client, stream_arn=self.stream_arn)
        checkpoints = store.checkpoints_get_many(shard_ids=list(self.shards))
        # Shards retired by anyone (ours in memory too: a shard trimmed away
        # from DescribeStream has no checkpoint to read back).
        self.retired = {sid for sid, cp in checkpoints.items() if cp.closed} | (self.retired - set(self.shards))
        self._report_gone_parents()
        now_ms = int(now * 1000)
        self._renew(now)
        ready = self.ready_shards()
        workers = max(1, len(store.workers_alive(now_ms=now_ms, prune=True)))
        fair_share = math.ceil(len(ready) / workers)
        # More workers than when we took our shards: hand back the excess, so
        # the newcomers get a fair share. Safe between batches: every batch
        # is checkpointed before the next step.
        for shard_id in list(self.owned)[fair_share:]:
            store.lease_release(shard_id=shard_id, owner=self.worker_id)
            self.owned.pop(shard_id)
            logger.info("Handed %s back to rebalance across %d workers.", shard_id, workers)
        gained = False
        leases = store.leases_get_many(shard_ids=ready)
        for shard_id in ready:
            if len(self.owned) >= fair_share:
                break
            if shard_id in self.owned:
                continue
            lease = leases.get(shard_id)
            if lease and lease.owner != self.worker_id and lease.expires_at_ms > now_ms:
                continue  # held by a live worker
            checkpoint = checkpoints.get(shard_id)
            at = checkpoint.sequence_number if checkpoint else None
            taken = lease_take(shard_id=shard_id, owner=self.worker_id, ttl_seconds=self.config.lease_seconds,
                               seen=lease, checkpoint=at, now_ms=now_ms)
            if taken:
                self.owned[shard_id] = ShardProgress(deaths=deaths_at(taken, at))
                gained = True
                if lease and lease.died_holding:
                    self.stats.takeovers_after_death += 1
                    logger.warning("Took the lease on %s from %s, which died holding it (%d death(s) in a row at "
                                   "checkpoint %s): reading the next batch one record at a time.",
                                   shard_id, lease.owner, taken.deaths, at or "none")
                else:
                    logger.info("Took the lease on %s.", shard_id)
        return gained

    def _report_gone_parents(self) -> None:
        """A parent shard that left DescribeStream (24 h after it closed) with
        a checkpoint short of its end: its unread records were trimmed while
        no worker read them. Its children are readable now, so nothing would
        fail: say so loudly, once, as _after_trim does for a shard still
        listed."""
        gone = gone_parents(self.shards)
        unchecked = gone - self._gone_parents_checked
        if not unchecked:
            return
        for shard_id, checkpoint in store.checkpoints_get_many(shard_ids=sorted(unchecked)).items():
            if not checkpoint.closed:
                self.stats.trimmed += 1
                logger.error(
                    "DATA LOSS: shard %s left the stream (past the 24 h retention) before it was read to its end "
                    "(checkpoint %s). Their submissions stay pending: run redrive_pending once caught up.", shard_id,
                    checkpoint.sequence_number)
                store.checkpoint_put(shard_id=shard_id, sequence_number=checkpoint.sequence_number, closed=True)
        self._gone_parents_checked |= unchecked

    def _renew(self, now: float) -> None:
        """Heartbeat and renew the leases we hold; forget the ones lost."""
        self._next_renewal = now + self.config.renew_interval
        now_ms = int(now * 1000)
        store.worker_heartbeat(worker_id=self.worker_id, ttl_seconds=self.config.lease_seconds,
                               status=self.status(), now_ms=now_ms)
        for shard_id in list(self.owned):
            if shard_id in self.retired or not store.lease_acquire(
                shard_id=shard_id, owner=self.worker_id, ttl_seconds=self.config.lease_seconds, now_ms=now_ms
            ):
                logger.warning("Lost the lease on %s; another worker has it now.", shard_id)
                self.owned.pop(shard_id)

    def keep_leases(self) -> None:
        """Renew our leases if due, from inside a long batch (the failure
        policy calls it between retries), so that a worker retrying a record
        keeps its shards. Raises BatchAbandoned if the shard of the batch in
        hand was lost all the same: its new owner reads the same records, and
        this worker must stop writing for them."""
        now = self.clock()
        if now >= self._next_renewal:
            self._renew(now)
        if self._in_hand is not None and self._in_hand not in self.owned:
            raise BatchAbandoned(f"lost the lease on {self._in_hand} during its batch")

    def ready_shards(self) -> list[str]:
        """Shards that may be read now (see shards.ready_shards)."""
        return ready_shards(self.shards, self.retired)

    def owns_every_ready_shard(self) -> bool:
        """Every shard that may be read now is ours."""
        return set(self.ready_shards()) <= set(self.owned)

    def drained(self) -> bool:
        """Drained, as far as this worker can tell: every ready shard is ours
        and its last read found its tip: it came back empty, or held only
        skipped records written after this reader started. Passes that
        merely skipped records are not enough: a long run of our own writes
        (outcomes, pointers, checkpoints), in pages DynamoDB cuts at 1 MB,
        can stand between two submissions."""
        return self.owns_every_ready_shard() and all(p.at_tip for p in self.owned.values())

    # --- step 2: read and process ------------------------------------------

    def step_poll(self) -> bool:
        """Read one batch from each owned shard. True if any record passed the
        filter (skipped records alone, such as our own writes, are no work)."""
        got_any = False
        for shard_id in list(self.owned):
            if shard_id not in self.owned:
                continue  # lost while an earlier shard's batch renewed the leases
            try:
                got_any |= self._poll_shard(shard_id)
            except BatchAbandoned as exc:
                self.stats.batches_abandoned += 1
                logger.warning("Gave up a batch of %s (%s); its records stay after the checkpoint.", shard_id, exc)
                return got_any
            except store.StoreUnavailable:
                # DynamoDB is unreachable or throttling: keep the checkpoint
                # where it is and let the caller back off.
                self.stats.errors += 1
                raise
        return got_any

    def _poll_shard(self, shard_id: str) -> bool:
        progress = self.owned[shard_id]
        if progress.iterator is None:
            progress.iterator = self._iterator_from_checkpoint(shard_id)
        records, matching, next_iterator, progress.at_tip = self._read_batch(shard_id, progress)
        if records:
            self.stats.records_read += len(records)
            self.stats.records_matched += len(matching)
            if matching:
                self._in_hand = shard_id
                progress.in_hand_created = _created_s(records[-1])
                try:
                    if progress.deaths:
                        self._one_at_a_time(shard_id, progress, matching)
                    else:
                        self.handle_batch(matching, shard_id)
                    self.keep_leases()  # lost during a pause? Then the checkpoint is the new owner's to write.
                finally:
                    self._in_hand = None
                    progress.in_hand_created = None
                self.stats.batches += 1
            progress.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
            progress.lag_ms = _lag_ms(records[-1]["dynamodb"].get("ApproximateCreationDateTime"), self.clock())
            # Our own writes (this checkpoint too) are records on the stream.
            # Checkpointing after every batch of them would feed itself
            # forever, so a batch that only skipped records is checkpointed
            # at most once a checkpoint_interval.
            if matching or self.clock() - progress.checkpointed_at >= self.config.checkpoint_interval:
                store.checkpoint_put(shard_id=shard_id, sequence_number=progress.last_sequence)
                progress.checkpointed_at = self.clock()
        elif next_iterator is not None:
            progress.lag_ms = 0  # at the tip of an open shard
        progress.iterator = next_iterator
        if next_iterator is None:
            # Closed and drained: retire it so its children can start.
            store.checkpoint_put(shard_id=shard_id, sequence_number=progress.last_sequence, closed=True)
            store.lease_release(shard_id=shard_id, owner=self.worker_id, closed=True)
            self.owned.pop(shard_id)
            self.retired.add(shard_id)
            self.stats.shards_retired += 1
            logger.info("Shard %s is closed and drained: retired.", shard_id)
            self._next_refresh = 0.0  # look for its children now
        return bool(matching)

    def _one_at_a_time(self, shard_id: str, progress: ShardProgress, records: list[dict]) -> None:
        """The first batch after a holder died with the shard (a page at
        most): each record alone, with a checkpoint after it. If one of them kills this process
        too, the next owner's checkpoint stops right before it, and its log
        line names it and counts the deaths there.

        Such a record is not dead-lettered automatically: a worker that only
        stalled (a long outage, a pause) looks the same from here as one
        that died, and skipping a valid submission is worse than stopping
        the shard and alerting (the lag metric grows). A record that raises
        is retried and dead-lettered by handle_batch as always.
        """
        if progress.deaths > 1:
            logger.error("Shard %s: %d workers in a row died holding it at this checkpoint. Its next record, %s, "
                         "goes alone first: if this worker dies too, that record is the likely cause.", shard_id,
                         progress.deaths, records[0]["dynamodb"]["SequenceNumber"])
        for record in records:
            self.keep_leases()
            self.handle_batch([record], shard_id)
            store.checkpoint_put(shard_id=shard_id, sequence_number=record["dynamodb"]["SequenceNumber"])
        progress.deaths = 0

    def _read_batch(self, shard_id: str, progress: ShardProgress) -> tuple[list[dict], list[dict], str | None, bool]:
        """Up to batch_size records, gathered as Lambda's poller gathers a
        batch: GetRecords pages of at most store.GET_RECORDS_LIMIT, read on at
        once while the shard has a backlog, and otherwise until the batching
        window ends. Under a backlog a large batch folds more submissions
        into each player's one TOTAL write (docs/consumer.md). DynamoDB also
        ends a page at 1 MB, which ends the gathering as any short page
        does: there the batching window gathers a batch across such pages.

        Returns the records, those that pass the filters, the next iterator,
        and whether the last read found the shard's tip (at_tip). The
        leases are kept between pages: BatchAbandoned if this shard's was
        lost meanwhile."""
        records: list[dict] = []
        matching: list[dict] = []
        iterator = progress.iterator
        deadline = self.clock() + self.config.batching_window
        # After a holder died here, its records go one at a time (see
        # _one_at_a_time), at most a page of them: a record that kills this
        # worker too is then isolated in a page, at worst a page a death,
        # and a large batch size does not slow the recovery to a crawl.
        size = min(store.GET_RECORDS_LIMIT, self.config.batch_size) if progress.deaths else self.config.batch_size
        self._in_hand = shard_id
        try:
            while True:
                limit = min(store.GET_RECORDS_LIMIT, size - len(records))
                try:
                    got, iterator = store.records_get(client=self.client, iterator=iterator, limit=limit)
                except store.IteratorExpired:
                    # Iterators live 15 minutes; the checkpoint does not expire.
                    self.stats.expired_iterators += 1
                    logger.info("Iterator for %s expired; resuming from the checkpoint.", shard_id)
                    iterator = self._iterator_from_checkpoint(shard_id, last=progress.last_sequence)
                    continue
                except store.DataTrimmed:
                    iterator = self._after_trim(shard_id)
                    continue
                passed = [r for r in got if matches_any(r, self.config.filters)]
                records += got
                matching += passed
                # At the tip: an empty read; or a read of only our own writes
                # made after we started (creation times are rounded down to
                # the second: one more), so that what was on the stream when
                # we started is behind us. A short read is not enough:
                # DynamoDB ends a page at 1 MB too, and a long run of a
                # predecessor's writes comes in such pages.
                at_tip = not got or (
                    not passed and _created_s(got[0]) is not None and _created_s(got[0]) >= self.started_at + 1)
                # A backlog: the read came back full. Anything less ends the
                # gathering (once the window has passed), at worst early.
                backlog = len(got) >= limit and not at_tip
                if iterator is None or len(records) >= size or (not backlog and self.clock() >= deadline):
                    return records, matching, iterator, at_tip
                if not got:
                    self.sleep(min(self.config.poll_interval, max(0.0, deadline - self.clock())))
                self.keep_leases()
        finally:
            self._in_hand = None

    def _iterator_from_checkpoint(self, shard_id: str, last: str | None = None) -> str:
        checkpoint = None if last else store.checkpoint_get(shard_id=shard_id)
        last = last or (checkpoint.sequence_number if checkpoint else None)
        try:
            return store.shard_iterator(client=self.client, stream_arn=self.stream_arn, shard_id=shard_id,
                                        after=last, position=start_position(self.shards.get(shard_id),
                                                                        self.config.starting_position))
        except store.DataTrimmed:
            return self._after_trim(shard_id)

    def _after_trim(self, shard_id: str) -> str:
        """Records we had not read are gone (older than 24 h). Say so loudly,
        count it, and go on from the oldest record still there."""
        self.stats.trimmed += 1
        logger.error(
            "DATA LOSS: records of shard %s were trimmed (past the stream's 24 h retention) before they "
            "were processed. Continuing from TRIM_HORIZON. Their submissions stay pending: run redrive_pending "
            "once caught up.", shard_id)
        return store.shard_iterator(client=self.client, stream_arn=self.stream_arn, shard_id=shard_id)

    # --- shutdown and status -------------------------------------------------

    def lags_ms(self) -> dict[str, int]:
        """Each owned shard's IteratorAge in ms, where known: now minus the
        creation of the newest record read, or, while a batch is in hand
        (retried, perhaps for ever), of that batch's newest record, so that a
        stuck shard's age keeps growing, as Lambda's IteratorAge does."""
        lags = {}
        for shard_id, progress in self.owned.items():
            if progress.in_hand_created is not None:
                lags[shard_id] = _lag_ms(progress.in_hand_created, self.clock())
            elif progress.lag_ms is not None:
                lags[shard_id] = progress.lag_ms
        return lags

    def release_all(self) -> None:
        """Hand our shards back at once, for a clean shutdown."""
        for shard_id in list(self.owned):
            store.lease_release(shard_id=shard_id, owner=self.worker_id)
        self.owned.clear()
        store.worker_remove(worker_id=self.worker_id)

    def status(self) -> dict:
        """What the heartbeat publishes: shards, counters, and recent samples
        of (time, records read, worst lag) for the staff pipeline page."""
        lags = [p.lag_ms for p in self.owned.values() if p.lag_ms is not None]
        self.history.append((round(self.clock()), self.stats.records_read, max(lags, default=0)))
        del self.history[:-HISTORY_SAMPLES]
        return {
            "worker_id": self.worker_id,
            "shards": {sid: {"lag_ms": p.lag_ms, "checkpoint": p.last_sequence} for sid, p in self.owned.items()},
            "stats": {k: getattr(self.stats, k) for k in ReaderStats.__dataclass_fields__},
            "history": list(self.history),
        }


def _lag_ms(created, now: float) -> int | None:
    """Now minus the record's ApproximateCreationDateTime (IteratorAge)."""
    created_s = _seconds(created)
    return None if created_s is None else max(0, int((now - created_s) * 1000))


def _created_s(record: dict) -> float | None:
    return _seconds(record["dynamodb"].get("ApproximateCreationDateTime"))


def _seconds(created) -> float | None:
    """ApproximateCreationDateTime in epoch seconds (boto3 gives a datetime,
    a Lambda event a number)."""
    if created is None:
        return None
    return created.timestamp() if isinstance(created, datetime) else float(created)
