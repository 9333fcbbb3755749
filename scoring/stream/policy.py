"""What happens when a batch fails: Lambda's event source mapping knobs.

``BisectBatchOnFunctionError``, ``MaximumRetryAttempts``,
``MaximumRecordAgeInSeconds`` and ``DestinationConfig.OnFailure``, with the
same meaning as on Lambda, so the two deployments behave alike. An outage
(StoreUnavailable) is not a record's fault: it is never counted against the
record, and the whole batch is retried once DynamoDB is back.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from scoring import store
from scoring.backoff import backoff_seconds
from scoring.stream.reader import BatchAbandoned

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    max_retry_attempts: int = 3  # -1: retry forever, as Lambda's default
    max_record_age: float = -1  # seconds; -1: no limit
    bisect_on_error: bool = True
    on_failure_sqs_url: str | None = None  # None: DLQ items in the table
    retry_base_seconds: float = 0.2


class BatchRunner:
    """Runs ``process(records)`` with retries, bisection and a dead-letter list."""

    def __init__(self, process: Callable[[list[dict]], None], policy: FailurePolicy, *,
                 sqs_client=None, clock=time.time, sleep=time.sleep, adjustments_missed=None):
        self.process = process
        # The batch's missed-adjustment step, for a dead-lettered record whose
        # count stands in its TOTAL (store.score_settle_failed).
        self.adjustments_missed = adjustments_missed
        self._sent: set[str | None] = set()  # dead letters sent, their records not settled yet
        self.policy = policy
        self.sqs_client = sqs_client
        self.clock = clock
        self.sleep = sleep
        self.dead_lettered = 0
        self.unsettled = 0  # dead letters DynamoDB refused to settle (left pending)

    def run(self, records: list[dict]) -> None:
        fresh = self._drop_too_old(records, 0)
        if fresh:
            self._run(fresh)

    def _drop_too_old(self, records: list[dict], attempts: int) -> list[dict]:
        """Dead-letter the records past MaximumRecordAgeInSeconds; the rest."""
        fresh = []
        for record in records:
            if self._too_old(record):
                self._dead_letter([record], f"older than MaximumRecordAgeInSeconds={self.policy.max_record_age}",
                                  attempts)
            else:
                fresh.append(record)
        return fresh

    def _run(self, records: list[dict]) -> None:
        attempt = 0
        while True:
            try:
                self.process(records)
                return
            except (store.StoreUnavailable, BatchAbandoned):
                raise  # an outage, a lost lease or a stop: no record is to blame
            except Exception as exc:  # noqa: BLE001 - any other error is the batch's
                if self.policy.bisect_on_error and len(records) > 1:
                    middle = len(records) // 2
                    logger.warning("Batch of %d failed (%r); bisecting.", len(records), exc)
                    self._run(records[:middle])
                    self._run(records[middle:])
                    return
                attempt += 1
                limit = self.policy.max_retry_attempts
                if limit >= 0 and attempt > limit:
                    self._dead_letter(records, repr(exc), attempt)
                    return
                # The age limit holds during retries too, however many are allowed.
                records = self._drop_too_old(records, attempt)
                if not records:
                    return
                delay = backoff_seconds(attempt - 1, base=self.policy.retry_base_seconds, cap=10.0, jitter=False)
                logger.warning("Batch of %d failed (%r); retry %d in %.2fs.", len(records), exc, attempt, delay)
                self.sleep(delay)

    def _adjustments_missed(self, totals, applied) -> None:
        """The batch's step, for a record dead-lettered with its count
        standing. An outage stops the settling (the batch comes back to it
        once the outage is over); any other failure is logged and the record settled
        all the same: ``rules_change --resume`` writes what it missed."""
        try:
            self.adjustments_missed(totals, applied)
        except (store.StoreUnavailable, BatchAbandoned):
            raise
        except Exception:  # noqa: BLE001 - the record is being dead-lettered already
            for decision in applied:
                logger.exception(
                    "Could not write the adjustments that retroactive rules changes may owe player %s for "
                    "submission %s, dead-lettered with its count standing (rules version %d); run "
                    "`manage.py rules_change --resume ID` for each retroactive change after that version",
                    decision.submission.player_id, decision.submission.id, decision.rules_version)

    def _too_old(self, record: dict) -> bool:
        if self.policy.max_record_age < 0:
            return False
        created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
        if created is None:
            return False
        created_s = created.timestamp() if isinstance(created, datetime) else float(created)
        return self.clock() - created_s > self.policy.max_record_age

    def _dead_letter(self, records: list[dict], error: str, attempts: int) -> None:
        """Send to the on-failure destination and settle the submission
        (rejected, unless its TOTAL holds a decision already), so the player
        sees an answer and the shard moves on."""
        step = self._adjustments_missed if self.adjustments_missed is not None else None
        for record in records:
            seq = record.get("dynamodb", {}).get("SequenceNumber")
            # An outage while settling raises, and the batch comes back here
            # once it is over: its dead letter was sent already.
            if seq is None or seq not in self._sent:
                logger.error("Dead-lettering record %s after %d attempt(s): %s", seq, attempts, error)
                if self.policy.on_failure_sqs_url:
                    store.dlq_send(client=self.sqs_client, queue_url=self.policy.on_failure_sqs_url, record=record,
                                   error=error, attempts=attempts)
                else:
                    store.dlq_put(record=record, error=error, attempts=attempts)
                self._sent.add(seq)
            try:
                store.score_settle_failed(record=record, error=f"Could not be processed: {error}"[:500],
                                          adjustments_missed=step)
            except store.StoreUnavailable:
                raise
            except store.StoreError as exc:
                # DynamoDB refused the write itself (an item past its size
                # limit, say), and would refuse it again: retried as an
                # outage, it would stop the shard, and every player on it,
                # for good. The dead letter is sent; the submission stays
                # pending, for redrive_pending once the cause is fixed.
                logger.error("DynamoDB refused to settle dead-lettered record %s (%s): its submission stays "
                             "pending. Fix the cause, then run `manage.py redrive_pending`.", seq, exc)
                self.unsettled += 1
            self._sent.discard(seq)
            self.dead_lettered += 1
