"""Re-driving stranded submissions: pending SCORE items whose stream record
no consumer will deliver again.

A SCORE item stays ``pending`` until some processing of its INSERT record
gives it an outcome. Two things take that record away for good:

- DynamoDB Streams keeps records for 24 hours. A consumer stopped or behind
  for longer never reads the trimmed ones (it logs "DATA LOSS").
- Under Lambda, a batch the event source mapping gives up on
  (``MaximumRetryAttempts``) goes to the on-failure destination as a shard
  and a range of sequence numbers, not as records, and the mapping moves on.

A re-drive reads the pending SCORE items older than a threshold from the
table and runs them through ``processing.records_process``, the call every
stream batch makes (``consume_scores`` and Lambda alike), as records built
from the items. A pending SCORE item is exactly its INSERT record's
NewImage: only its outcome ever changes it.

Exactly once holds as for any stream batch: processing is idempotent, and
safe beside a consumer that processes the same record at the same time
(docs/consumer.md, "Two workers on the same records at once"). So a
submission whose record was only late, not lost, is counted once too, and a
re-drive killed at any point can simply be run again.
"""

import heapq
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from scoring import catalog, events, processing, store
from scoring.domain import Status, Submission, utcnow
from scoring.live import LiveUpdater
from scoring.stream.filters import matches_any, parse_patterns
from scoring.stream.worker import Worker

logger = logging.getLogger(__name__)

BATCH_SIZE = 100


def written_at(submission: Submission) -> datetime:
    """When the SCORE item was put, so when its INSERT record was made: a
    review carries the held submission's play time as ``submitted_at``,
    and was written when it was decided."""
    return submission.reviewed_at if submission.review_of and submission.reviewed_at else submission.submitted_at


@dataclass(slots=True)
class Found:
    """What a scan for stranded submissions found among the pending ones."""

    stranded: list[Submission] = field(default_factory=list)  # oldest first, at most the limit
    beyond_limit: int = 0  # stranded too, younger than those: for the next run
    younger: int = 0  # written within the threshold: left to the consumer
    filtered: int = 0  # left out by STREAM_FILTERS, as the consumer leaves them
    unreadable: list[str] = field(default_factory=list)  # "<PK>: <error>" of items that are not submissions


def stranded(*, older_than: timedelta, now: datetime | None = None, limit: int | None = None,
             filters: list[dict] | None = None) -> Found:
    """Pending SCORE items written more than ``older_than`` ago that the
    stream's ``filters`` (parsed; default: settings.STREAM_FILTERS) let
    through, oldest first (the order the stream delivered them in); with
    ``limit``, only that many of the oldest, and only they are held in
    memory. A full scan."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")  # nsmallest(0) would not even scan
    cutoff = (now or utcnow()) - older_than
    if filters is None:
        filters = parse_patterns(settings.STREAM_FILTERS)
    found = Found()
    matched = 0

    def candidates() -> Iterator[Submission]:
        nonlocal matched
        for submission in store.scores_scan(status=Status.PENDING,
                                            unreadable=lambda pk, exc: found.unreadable.append(f"{pk}: {exc!r}")):
            if written_at(submission) >= cutoff:
                found.younger += 1
            elif not matches_any(record_of(submission), filters):
                found.filtered += 1
            else:
                matched += 1
                yield submission

    if limit is None:
        found.stranded = sorted(candidates(), key=written_at)
    else:
        found.stranded = heapq.nsmallest(limit, candidates(), key=written_at)
    found.beyond_limit = matched - len(found.stranded)
    return found


def record_of(submission: Submission) -> dict:
    """The INSERT record the stream made of this SCORE item: what the
    filters read (its event name and keys) and ``records_process`` reads
    (its NewImage). No sequence number: nothing here reads one."""
    item = store.submission_to_item(submission)
    return {"eventName": "INSERT", "eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"PK": item["PK"], "SK": item["SK"]}, "NewImage": item,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}


@dataclass(slots=True)
class RedriveResult:
    applied: int = 0
    rejected: int = 0
    held: int = 0
    skipped: int = 0  # settled meanwhile: their record came after all, or another re-drive ran
    failed: list[tuple[str, str]] = field(default_factory=list)  # (submission id, error): still pending

    @property
    def processed(self) -> int:
        return self.applied + self.rejected + self.held + self.skipped + len(self.failed)


@dataclass(slots=True)
class Redrive:
    """Runs stranded submissions through the stream's processing, in
    batches, as Lambda would: the catalog, rules version and hold rules
    read for each batch, domain events published, the live boards updated
    and pushed, and any adjustment a retroactive rules change still owes
    written."""

    batch_size: int = BATCH_SIZE
    live: LiveUpdater = field(default_factory=LiveUpdater)
    publish: Callable | None = field(default_factory=events.publisher_from_settings)

    def run(self, submissions: list[Submission]) -> Iterator[RedriveResult]:
        """Process them; yields the running result after each batch.

        A batch that fails for anything but an outage goes again one
        submission at a time, as the Lambda handler does: the ones that
        fail alone are logged and listed in ``failed``, and stay pending;
        the others are processed. An outage (StoreUnavailable, of DynamoDB
        or of the catalog database) raises, the batches before it done.
        """
        result = RedriveResult()
        for start in range(0, len(submissions), self.batch_size):
            batch = submissions[start:start + self.batch_size]
            try:
                self._process(batch, result)
            except store.StoreUnavailable:
                raise
            except Exception:  # noqa: BLE001 - a record's fault, found one at a time below
                logger.exception("A batch of %d failed; processing it one submission at a time", len(batch))
                for submission in batch:
                    try:
                        self._process([submission], result)
                    except store.StoreUnavailable:
                        raise
                    except Exception as exc:  # noqa: BLE001 - reported, and it stays pending
                        logger.exception("Submission %s failed; it stays pending", submission.id)
                        result.failed.append((submission.id, f"{type(exc).__name__}: {exc}"))
            yield result

    def _process(self, batch: list[Submission], result: RedriveResult) -> None:
        with catalog.catalog_available():
            points_for, version = catalog.points_versioned()
            hold_rules = catalog.hold_rules()
        done = processing.records_process(
            [record_of(s) for s in batch], points_for=points_for, rules_version=version, hold_rules=hold_rules,
            publish=self.publish, on_commit=self.live.after_batch, adjustments_missed=Worker.adjustments_missed)
        result.applied += len(done.applied)
        result.rejected += len(done.rejected)
        result.held += len(done.held)
        result.skipped += done.skipped
