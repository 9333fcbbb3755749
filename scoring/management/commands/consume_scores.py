import errno
import logging
import os
import signal
import socket
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import start_http_server

from scoring import store
from scoring.events import publisher_from_settings
from scoring.live import LiveUpdater
from scoring.stream.filters import InvalidFilter, parse_patterns
from scoring.stream.policy import FailurePolicy
from scoring.stream.reader import BATCH_SIZE_MAX, ReaderConfig
from scoring.stream.worker import OtherWorkersRunning, Worker, WorkerConfig

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
        parser.add_argument("--batch-size", type=int, help=f"Most records per batch, 1 to {BATCH_SIZE_MAX:,} "
                                                           "(default: settings.STREAM_BATCH_SIZE).")
        parser.add_argument("--progress-every", type=float, default=10.0,
                            help="Seconds between progress lines (0: one every pass).")
        parser.add_argument("--metrics-port", type=int, help="Serve Prometheus metrics on this port (1 to 65535).")
        parser.add_argument("--metrics-addr", default="0.0.0.0",
                            help="The address --metrics-port listens on (default: every interface; the metrics "
                                 "have no authentication, so give an internal one).")
        parser.add_argument("--heartbeat-file", help="Touch this file every loop, for a container healthcheck.")

    def handle(self, *args, **options):
        try:
            filters = parse_patterns(settings.STREAM_FILTERS)
        except (InvalidFilter, ValueError) as exc:
            raise CommandError(f"Setting STREAM_FILTERS is invalid: {exc}") from None
        batch_size = settings.STREAM_BATCH_SIZE if options["batch_size"] is None else options["batch_size"]
        if not 1 <= batch_size <= BATCH_SIZE_MAX:
            raise CommandError(f"--batch-size must be between 1 and {BATCH_SIZE_MAX:,} (Lambda's largest BatchSize "
                               "for a DynamoDB stream).")
        progress_every = options["progress_every"]
        if not progress_every >= 0:  # not `< 0`: NaN compares false, and would silence progress for good
            raise CommandError(f"--progress-every must be >= 0 seconds, not {progress_every:g}.")
        metrics_port = options["metrics_port"]
        if metrics_port is not None and not 1 <= metrics_port <= 65535:
            raise CommandError(f"--metrics-port {metrics_port}: give a port from 1 to 65535.")
        worker_id = options["worker_id"] or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            arn = store.stream_arn()
        except store.StoreError as exc:
            raise CommandError(f"Cannot read the stream of table {settings.DYNAMODB_TABLE}: {exc}") from None
        reader = ReaderConfig(batch_size=batch_size, batching_window=settings.STREAM_BATCHING_WINDOW,
                              starting_position=options["starting_position"] or settings.STREAM_STARTING_POSITION,
                              filters=filters, lease_seconds=settings.STREAM_LEASE_SECONDS,
                              poll_interval=settings.STREAM_POLL_INTERVAL)
        policy = FailurePolicy(max_retry_attempts=settings.STREAM_MAX_RETRY_ATTEMPTS,
                               max_record_age=settings.STREAM_MAX_RECORD_AGE,
                               bisect_on_error=settings.STREAM_BISECT_ON_ERROR,
                               on_failure_sqs_url=settings.STREAM_ON_FAILURE_SQS_URL)
        worker = Worker(stream_arn=arn, worker_id=worker_id, live=LiveUpdater(), publish=publisher_from_settings(),
                        sqs_client=store.sqs_client() if policy.on_failure_sqs_url else None,
                        config=WorkerConfig(reader=reader, policy=policy, progress_every=progress_every,
                                            heartbeat_file=options["heartbeat_file"]))

        def on_signal(signum, frame):
            logger.info("Got %s: finishing the batch in flight, then stopping.", signal.Signals(signum).name)
            worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        logger.info("consume_scores %s reading %s", worker_id, arn)
        if metrics_port is not None:
            try:
                start_http_server(metrics_port, addr=options["metrics_addr"])
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CommandError(f"--metrics-port {metrics_port} is already in use: stop what serves on it, "
                                       "or give another port.") from None
                raise CommandError(f"Cannot serve metrics on {options['metrics_addr']} port {metrics_port}: "
                                   f"{exc}.") from None
            logger.info("Prometheus metrics on %s port %d", options["metrics_addr"], metrics_port)
        try:
            worker.run(once=options["once"])
        except OtherWorkersRunning as exc:
            worker.shutdown()
            raise CommandError(f"--once drains the stream alone, but {exc}. Their shards stay theirs: stop them "
                               "first, or let them do the work.") from None
        worker.shutdown()
        logger.info("consume_scores %s stopped cleanly.", worker_id)
