"""A stream worker: the consume loop of ``manage.py consume_scores``, as steps.

One pass (``step``) refreshes shards and leases, polls the owned shards,
and reports. ``run`` repeats it, backing off through outages, until
``stop()`` (SIGTERM) or, with ``once``, until the stream is drained. Each
step can be called on its own, with an injected clock and sleep, so tests
drive the loop one pass at a time instead of reimplementing it.

The reader (``reader.StreamReader``) reads shards; the failure policy
(``policy.BatchRunner``) decides what a failing batch does; processing
(``scoring.processing``) applies a batch exactly once; the after-batch step
(``scoring.live``) keeps the boards. The worker only strings them together.
"""

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from scoring import metrics, store
from scoring.backoff import backoff_seconds
from scoring.catalog import catalog_available, hold_rules, points_versioned
from scoring.processing import TotalsCache, records_process
from scoring.rules import adjustments_missed_write
from scoring.stream.policy import BatchRunner, FailurePolicy
from scoring.stream.reader import BatchAbandoned, ReaderConfig, StreamReader

logger = logging.getLogger("scoring.stream")


class OtherWorkersRunning(Exception):
    """``run(once=True)`` cannot drain the stream: live workers hold shards."""

    def __init__(self, workers: list[str]):
        super().__init__(f"{len(workers)} other consumer(s) hold shards of the stream: {', '.join(workers)}")
        self.workers = workers


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    reader: ReaderConfig
    policy: FailurePolicy
    progress_every: float = 10.0  # seconds between progress lines
    heartbeat_file: str | None = None  # touched every pass, for a container healthcheck


class Worker:
    """``clock`` is wall time (leases expire by it, across processes);
    ``sleep`` waits. Tests pass a clock that moves only when slept."""

    def __init__(self, *, stream_arn: str, worker_id: str, config: WorkerConfig, live, publish=None,
                 streams_client=None, sqs_client=None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.live = live  # after_batch(result), heal_if_stale(): see scoring/live.py
        self.publish = publish
        self.clock = clock
        self._sleep_for = sleep
        self.stopping = False
        self.applied = self.rejected = 0
        self.outages = 0
        self.runner = BatchRunner(self.process, config.policy, sqs_client=sqs_client, sleep=self.retry_wait,
                                  adjustments_missed=self.adjustments_missed)
        self.reader = StreamReader(client=streams_client or store.streams_client(), stream_arn=stream_arn,
                                   worker_id=worker_id, handle_batch=lambda records, shard_id: self.runner.run(records),
                                   config=config.reader, clock=clock, sleep=sleep)
        self._last_progress = clock()
        self._lag_series: set[str] = set()  # shards with an iterator-age series from us
        self._last_count = 0
        self._next_heal = 0.0
        self._next_heartbeat = 0.0
        self._heartbeat_file_failing = False
        size = settings.STREAM_TOTALS_CACHE_SIZE
        self.totals_cache = TotalsCache(size) if size > 0 else None

    # --- the steps ------------------------------------------------------------

    def process(self, records: list[dict]) -> None:
        """Apply one batch: what the failure policy runs, and retries."""
        close_old_connections()  # a long-running process must not hold a dead DB connection
        known = self.known_totals()
        hits, misses = (known.hits, known.misses) if known is not None else (0, 0)
        with metrics.BATCH_SECONDS.time(), catalog_available():
            points_for, version = points_versioned()
            result = records_process(records, points_for=points_for, rules_version=version, hold_rules=hold_rules(),
                                     publish=self.publish, on_commit=self.live.after_batch, known_totals=known,
                                     keep_alive=self.keep_alive, adjustments_missed=self.adjustments_missed)
        if known is not None:
            metrics.TOTALS_READ.labels("cache").inc(known.hits - hits)
            metrics.TOTALS_READ.labels("table").inc(known.misses - misses)
        self.applied += len(result.applied)
        self.rejected += len(result.rejected)
        metrics.RECORDS.labels("applied").inc(len(result.applied))
        metrics.RECORDS.labels("rejected").inc(len(result.rejected))
        metrics.RECORDS.labels("held").inc(len(result.held))
        metrics.RECORDS.labels("skipped").inc(result.skipped)

    @staticmethod
    def adjustments_missed(totals, applied) -> int:
        """The adjustments a batch's late counts still owe
        (``rules.adjustments_missed_write``), a database outage there being
        an outage, as for the rest of the batch."""
        with catalog_available():
            return adjustments_missed_write(totals, applied)

    def known_totals(self) -> TotalsCache | None:
        """The TOTALs this worker wrote, for the next batch to start from,
        while it reads every shard there is to read: it is then the one
        writer of (nearly) every TOTAL, and its entries stay current. With
        the shards shared among workers most entries would be stale, each
        costing a failed put and a re-read, so the cache is emptied and
        left out until this worker holds them all again."""
        if self.totals_cache is None:
            return None
        if self.reader.owns_every_ready_shard():
            return self.totals_cache
        self.totals_cache.clear()
        return None

    def step(self, *, force_refresh: bool = False) -> bool:
        """One pass: refresh shards and leases, poll every owned shard, heal
        stale boards when due, report. True if a record was processed.
        Raises StoreError (EventPublishError for EventBridge) on an outage."""
        self._touch_heartbeat_file()
        self.reader.step_refresh(force=force_refresh)
        got = self.reader.step_poll()
        self.report_lags()
        if self.clock() >= self._next_heartbeat:
            self._next_heartbeat = self.clock() + settings.PIPELINE_HEARTBEAT_SECONDS
            self.live.heartbeat()
        if self.clock() >= self._next_heal:  # another process's Redis outage, or Lambda's
            self._next_heal = self.clock() + self.reader.config.renew_interval
            self.live.heal_if_stale()
        if self.clock() - self._last_progress >= self.config.progress_every:
            self.progress()
        return got

    def report_lags(self) -> None:
        """Set the iterator-age gauge of each shard we own, and drop the
        series of those we no longer own (retired, or taken over: their new
        owner reports them), so that no stale age outlives its shard."""
        lags = self.reader.lags_ms()
        for shard_id in self._lag_series - lags.keys():
            with contextlib.suppress(KeyError):  # another worker of this process dropped it
                metrics.SHARD_LAG.remove(shard_id)
        for shard_id, lag_ms in lags.items():
            metrics.SHARD_LAG.labels(shard_id).set(lag_ms / 1000)
        self._lag_series = set(lags)

    def step_safely(self, *, force_refresh: bool = False) -> bool | None:
        """``step``, backing off after an outage instead of raising: None if
        there was one. The backoff is short enough that the next pass renews
        our leases in time."""
        try:
            got = self.step(force_refresh=force_refresh)
        except store.StoreError as exc:  # unreachable, throttled, refused: wait, never crash the shard
            self.outages += 1
            delay = backoff_seconds(self.outages, base=0.2, cap=self.reader.config.renew_interval)
            logger.warning("%s unavailable (%s); retrying in %.1fs (attempt %d).", exc.service, exc, delay,
                           self.outages)
            self.sleep(delay)
            return None
        self.outages = 0
        return got

    def run(self, *, once: bool = False) -> None:
        """Pass after pass until stopped; with ``once``, until drained.

        Drained means every shard is ours, so ``once`` cannot finish beside
        another live worker. A dead one's leases expire and are taken over;
        shards still held by live workers after three lease periods raise
        OtherWorkersRunning instead of waiting for ever.
        """
        idle_passes = 0
        shared_since = None
        while not self.stopping:
            got = self.step_safely(force_refresh=once and idle_passes > 0)
            if got is None:
                continue
            if got:
                idle_passes = 0
                continue
            idle_passes += 1
            if once and idle_passes >= 2:
                if self.drained():
                    return
                if self.reader.owns_every_ready_shard():
                    shared_since = None
                else:
                    shared_since = shared_since if shared_since is not None else self.clock()
                    if self.clock() - shared_since > 3 * self.reader.config.lease_seconds:
                        self._others_running()
            self.sleep(self.reader.config.poll_interval)

    def _others_running(self) -> None:
        try:
            alive = store.workers_alive()
        except store.StoreError as exc:  # like any read between batches: wait, and look again
            logger.info("Cannot read the live workers (%s); still waiting for their shards.", exc)
            return
        others = sorted(set(alive) - {self.reader.worker_id})
        if others:
            raise OtherWorkersRunning(others)

    def drained(self) -> bool:
        """Every readable shard is ours, and none gave a record last pass."""
        return self.reader.drained()

    def retry_wait(self, seconds: float) -> None:
        """The failure policy's wait between retries of a batch: keeps our
        leases meanwhile, and gives the batch up if we are stopping (rather
        than burning through its retries without waiting)."""
        end = self.clock() + seconds
        while True:
            if self.stopping:
                raise BatchAbandoned("stopping")
            self.keep_alive()
            left = end - self.clock()
            if left <= 0:
                return
            self.sleep(min(left, self.reader.config.renew_interval))

    def keep_alive(self) -> None:
        """Called from inside a long batch (processing it, or waiting to
        retry it): keep our leases, raising BatchAbandoned if the batch's
        shard was lost; keep the iterator-age gauges current, since the batch
        in hand keeps ageing; and touch the healthcheck's file.

        A renewal that fails (throttled, unreachable, refused) is not the
        batch's fault, and the lease may well still hold: it is logged and
        tried again at the next call, rather than failing the batch, which
        the failure policy would blame on its records."""
        try:
            self.reader.keep_leases()
        except store.StoreError as exc:
            logger.warning("Could not renew the leases during a batch (%s); trying again shortly.", exc)
        self.report_lags()
        self._touch_heartbeat_file()

    def _touch_heartbeat_file(self) -> None:
        if not self.config.heartbeat_file:
            return
        try:
            Path(self.config.heartbeat_file).touch()
        except OSError as exc:  # the healthcheck sees a stale file: its call, not a reason to stop here
            if not self._heartbeat_file_failing:
                logger.warning("Could not touch the heartbeat file %s: %s", self.config.heartbeat_file, exc)
            self._heartbeat_file_failing = True
        else:
            self._heartbeat_file_failing = False

    def stop(self) -> None:
        """Finish the batch in flight, then stop (what SIGTERM calls)."""
        self.stopping = True

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when stopped."""
        end = self.clock() + seconds
        while not self.stopping and self.clock() < end:
            self._sleep_for(min(0.1, end - self.clock()))

    def shutdown(self) -> None:
        """Hand our shards back for the next worker, and say goodbye."""
        try:
            self.reader.release_all()
        except store.StoreError as exc:
            logger.warning("Could not release leases (%s); other workers take them over when they expire "
                           "in %s s.", exc, self.reader.config.lease_seconds)
        self.progress(final=True)

    def progress(self, *, final: bool = False) -> None:
        now = self.clock()
        stats = self.reader.stats
        rate = (stats.records_read - self._last_count) / max(1e-9, now - self._last_progress)
        lags = ", ".join(f"{sid[-12:]} lag={p.lag_ms}ms" for sid, p in self.reader.owned.items()) or "no shards"
        logger.info(
            "%s records/s=%.1f read=%d applied=%d rejected=%d dlq=%d trimmed=%d | %s",
            "final:" if final else "progress:", rate, stats.records_read, self.applied, self.rejected,
            self.runner.dead_lettered, stats.trimmed, lags,
        )
        self._last_progress, self._last_count = now, stats.records_read
