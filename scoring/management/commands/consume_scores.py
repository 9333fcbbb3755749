import logging
import os
import signal
import socket
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from prometheus_client import start_http_server

from scoring import metrics, store
from scoring.backoff import backoff_seconds
from scoring.catalog import points_lookup
from scoring.events import EventPublishError, publisher_from_settings
from scoring.live import LiveUpdater
from scoring.processing import records_process
from scoring.stream.filters import InvalidFilter, parse_patterns
from scoring.stream.policy import BatchRunner, FailurePolicy
from scoring.stream.reader import BatchAbandoned, ReaderConfig, StreamReader

logger = logging.getLogger("scoring.stream")


class Command(BaseCommand):
    help = (
        "Read the table's DynamoDB Stream and turn score submissions into totals, exactly once. "
        "Run several to share the stream's shards. SIGTERM/SIGINT finish the batch in flight and exit 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Drain the stream, then exit (tests, backfills).")
        parser.add_argument("--starting-position", choices=["TRIM_HORIZON", "LATEST"],
                            help="Where to start on a shard never seen before (default: settings).")
        parser.add_argument("--worker-id", help="Name of this worker in leases (default: host-pid-random).")
        parser.add_argument("--batch-size", type=int, help="Records per batch (default: settings.STREAM_BATCH_SIZE).")
        parser.add_argument("--progress-every", type=float, default=10.0, help="Seconds between progress lines.")
        parser.add_argument("--metrics-port", type=int, help="Serve Prometheus metrics on this port.")
        parser.add_argument("--heartbeat-file", help="Touch this file every loop, for a container healthcheck.")

    def handle(self, *args, **options):
        self.shutdown = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            filters = parse_patterns(settings.STREAM_FILTERS)
        except (InvalidFilter, ValueError) as exc:
            raise CommandError(f"Setting STREAM_FILTERS is invalid: {exc}") from None
        batch_size = options["batch_size"] or settings.STREAM_BATCH_SIZE
        if not 1 <= batch_size <= 1000:
            raise CommandError("--batch-size must be between 1 and 1000 (GetRecords returns at most 1000).")
        worker_id = options["worker_id"] or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            arn = store.stream_arn()
        except store.StoreError as exc:
            raise CommandError(f"Cannot read the stream of table {settings.DYNAMODB_TABLE}: {exc}") from None

        self.applied = self.rejected = 0
        self.live = LiveUpdater()
        publish_events = publisher_from_settings()
        policy = FailurePolicy(
            max_retry_attempts=settings.STREAM_MAX_RETRY_ATTEMPTS,
            max_record_age=settings.STREAM_MAX_RECORD_AGE,
            bisect_on_error=settings.STREAM_BISECT_ON_ERROR,
            on_failure_sqs_url=settings.STREAM_ON_FAILURE_SQS_URL,
        )
        runner = BatchRunner(lambda records: self._process(records, publish_events), policy,
                             sqs_client=store.sqs_client() if policy.on_failure_sqs_url else None,
                             sleep=self._retry_sleep)
        self.reader = StreamReader(
            client=store.streams_client(),
            stream_arn=arn,
            worker_id=worker_id,
            handle_batch=lambda records, shard_id: runner.run(records),
            config=ReaderConfig(
                batch_size=batch_size,
                batching_window=settings.STREAM_BATCHING_WINDOW,
                starting_position=options["starting_position"] or settings.STREAM_STARTING_POSITION,
                filters=filters,
                lease_seconds=settings.STREAM_LEASE_SECONDS,
                poll_interval=settings.STREAM_POLL_INTERVAL,
            ),
        )
        self.runner = runner
        logger.info("consume_scores %s reading %s", worker_id, arn)
        self.heartbeat_file = options["heartbeat_file"]
        if options["metrics_port"]:
            start_http_server(options["metrics_port"], addr="0.0.0.0")
            logger.info("Prometheus metrics on port %d", options["metrics_port"])
        self._loop(once=options["once"], progress_every=options["progress_every"])
        try:
            self.reader.release_all()
        except store.StoreError as exc:
            logger.warning("Could not release leases (%s); other workers take them over when they expire "
                           "in %s s.", exc, settings.STREAM_LEASE_SECONDS)
        self._progress(final=True)
        logger.info("consume_scores %s stopped cleanly.", worker_id)

    def _on_signal(self, signum, frame):
        logger.info("Got %s: finishing the batch in flight, then stopping.", signal.Signals(signum).name)
        self.shutdown = True

    def _process(self, records: list[dict], publish_events) -> None:
        close_old_connections()  # a long-running process must not hold a dead DB connection
        with metrics.BATCH_SECONDS.time():
            result = records_process(records, points_for=points_lookup(), publish=publish_events,
                                     on_commit=self._live_update)
        self.applied += len(result.applied)
        self.rejected += len(result.rejected)
        metrics.RECORDS.labels("applied").inc(len(result.applied))
        metrics.RECORDS.labels("rejected").inc(len(result.rejected))
        metrics.RECORDS.labels("skipped").inc(result.skipped)

    def _live_update(self, result) -> None:
        try:
            self.live.after_batch(result)
        except Exception:  # noqa: BLE001 - the totals are committed; a push must never undo that
            logger.exception("Live update after a batch failed; totals are applied, browsers resync later.")

    def _loop(self, *, once: bool, progress_every: float) -> None:
        outage = 0
        idle_passes = 0
        self._last_progress = time.monotonic()
        self._last_count = 0
        while not self.shutdown:
            if self.heartbeat_file:
                Path(self.heartbeat_file).touch()
            try:
                self.reader.step_refresh(force=once and idle_passes > 0)
                got = self.reader.step_poll()
                outage = 0
                for shard_id, progress in self.reader.owned.items():
                    if progress.lag_ms is not None:
                        metrics.SHARD_LAG.labels(shard_id).set(progress.lag_ms / 1000)
            except store.StoreError as exc:
                outage += 1
                # Short enough that the next pass renews our leases in time.
                delay = backoff_seconds(outage, base=0.2, cap=self.reader.config.renew_interval)
                service = "EventBridge" if isinstance(exc, EventPublishError) else "DynamoDB"
                logger.warning("%s unavailable (%s); retrying in %.1fs (attempt %d).", service, exc, delay, outage)
                self._sleep(delay)
                continue
            if time.monotonic() - self._last_progress >= progress_every:
                self._progress()
            if got:
                idle_passes = 0
                continue
            idle_passes += 1
            if once and idle_passes >= 2 and self._drained():
                return
            self._sleep(self.reader.config.poll_interval)

    def _retry_sleep(self, seconds: float) -> None:
        """The failure policy's wait between retries of a batch: keeps our
        leases meanwhile, and gives the batch up if we are stopping (rather
        than burning through its retries without waiting)."""
        end = time.monotonic() + seconds
        while True:
            if self.shutdown:
                raise BatchAbandoned("stopping")
            self.reader.keep_leases()
            left = end - time.monotonic()
            if left <= 0:
                return
            self._sleep(min(left, self.reader.config.renew_interval))

    def _drained(self) -> bool:
        """Every readable shard is ours, and none gave a record last pass."""
        return set(self.reader.ready_shards()) <= set(self.reader.owned)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.shutdown and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))

    def _progress(self, final: bool = False) -> None:
        now = time.monotonic()
        stats = self.reader.stats
        rate = (stats.records_read - self._last_count) / max(1e-9, now - self._last_progress)
        lags = ", ".join(f"{sid[-12:]} lag={p.lag_ms}ms" for sid, p in self.reader.owned.items()) or "no shards"
        logger.info(
            "%s records/s=%.1f read=%d applied=%d rejected=%d dlq=%d trimmed=%d | %s",
            "final:" if final else "progress:", rate, stats.records_read, self.applied, self.rejected,
            self.runner.dead_lettered, stats.trimmed, lags,
        )
        self._last_progress, self._last_count = now, stats.records_read
