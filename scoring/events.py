"""Domain events to EventBridge, published from the stream (never a dual write).

The API writes only the SCORE item; events leave when the stream processor
has committed the player's total, and a failed publish fails the batch, which
is replayed: every settled submission's event is sent at least once.
"""

import dataclasses
import functools
import json
import time
from collections.abc import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from scoring.backoff import backoff_seconds
from scoring.processing import DomainEvent
from scoring.store import StoreUnavailable

# PutEvents takes at most 10 entries per call (an AWS limit).
MAX_ENTRIES_PER_CALL = 10
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0


# What EventBridge documents as worth retrying (PutEventsResultEntry.ErrorCode),
# and the transient errors of a whole call. Anything else (AccessDenied, a
# missing bus, MalformedDetail) will not get better by waiting.
RETRYABLE_CODES = frozenset({"InternalFailure", "ThrottlingException", "InternalException", "ServiceUnavailable",
                             "RequestLimitExceeded"})


def _message(failed: int, total: int, attempts: int, codes: set[str]) -> str:
    return (f"{failed} of {total} events failed to publish after {attempts} attempts"
            f" ({', '.join(sorted(codes)) or 'no error code'})")


class EventPublishError(StoreUnavailable):
    """EventBridge could not be reached, or kept throttling or failing
    internally after every attempt. An outage, as a StoreUnavailable is: not
    the records' fault, so the batch waits and is replayed (its totals are
    committed; its events go out again) and nothing is dead-lettered."""

    service = "EventBridge"

    def __init__(self, *, failed: int, total: int, attempts: int, codes: set[str]):
        super().__init__(_message(failed, total, attempts, codes))
        self.failed = failed
        self.total = total


class EventsRefused(Exception):
    """EventBridge refused events for a reason waiting will not fix (access,
    a missing bus, a malformed entry): the batch fails as a record's failure
    would, and the failure policy retries and dead-letters it (its totals are
    committed, so its SCORE items are settled as applied)."""

    def __init__(self, *, failed: int, total: int, attempts: int, codes: set[str]):
        super().__init__(_message(failed, total, attempts, codes))


def client_from_settings():
    """The EventBridge client for the current settings (built lazily, cached).

    EVENTBRIDGE_ENDPOINT_URL if set; else the DynamoDB endpoint, since
    locally moto serves every service on one port; neither means real AWS.
    """
    endpoint = getattr(settings, "EVENTBRIDGE_ENDPOINT_URL", None) or getattr(settings, "DYNAMODB_ENDPOINT_URL", None)
    return _client(endpoint, getattr(settings, "AWS_REGION", "us-east-1"))


@functools.lru_cache(maxsize=16)
def _client(endpoint_url, region):
    config = Config(region_name=region, retries={"mode": "standard"})
    return boto3.session.Session().client("events", endpoint_url=endpoint_url, config=config)


def eventbridge_publisher(
    *,
    bus_name: str,
    client=None,
    source: str = "gamescores.scoring",
    max_attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[[list[DomainEvent]], None]:
    """A ``publish`` callable for ``records_process`` that sends to ``bus_name``.

    PutEvents gets at most 10 entries a call. Only the entries EventBridge
    refuses (FailedEntryCount, per-entry ErrorCode) are sent again, with
    exponential backoff and full jitter, up to ``max_attempts`` calls per
    chunk; then EventPublishError (an outage: only retryable codes) or
    EventsRefused (the batch's failure). Without ``client``, the
    settings' client is built on first publish, not here.
    """

    def publish(events: list[DomainEvent]) -> None:
        events_client = client if client is not None else client_from_settings()
        entries = [_entry(e, bus_name=bus_name, source=source) for e in events]
        failed, codes = 0, set()
        # Every chunk is tried before raising, so one refused chunk does not
        # keep the others from going out.
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            try:
                left, chunk_codes = _put_with_retries(
                    events_client, entries[start:start + MAX_ENTRIES_PER_CALL], max_attempts=max_attempts,
                    sleep=sleep)
            except BotoCoreError as exc:  # unreachable: an outage
                raise EventPublishError(failed=failed + len(entries) - start, total=len(entries), attempts=1,
                                        codes=codes | {type(exc).__name__}) from exc
            except ClientError as exc:  # throttled past botocore's retries, failing, or denied
                error = exc.response.get("Error", {})
                transient = error.get("Code") in RETRYABLE_CODES or \
                    exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
                raise (EventPublishError if transient else EventsRefused)(
                    failed=failed + len(entries) - start, total=len(entries), attempts=1,
                    codes=codes | {error.get("Code", "")}) from exc
            failed += left
            codes |= chunk_codes
        if failed:
            refused = EventPublishError if codes <= RETRYABLE_CODES else EventsRefused
            raise refused(failed=failed, total=len(entries), attempts=max_attempts, codes=codes)

    return publish


def _entry(event: DomainEvent, *, bus_name: str, source: str) -> dict:
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": event.type,
        "Detail": json.dumps(dataclasses.asdict(event)),
    }


def _put_with_retries(events_client, entries: list[dict], *, max_attempts: int, sleep) -> tuple[int, set[str]]:
    """Send one chunk; return how many entries were still refused, and why."""
    codes: set[str] = set()
    for attempt in range(max_attempts):
        if attempt:
            sleep(backoff_seconds(attempt, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS))
        response = events_client.put_events(Entries=entries)
        # Results come back in request order, one per entry.
        refused = [(entry, result) for entry, result in zip(entries, response.get("Entries", []), strict=False)
                   if result.get("ErrorCode")]
        if not response.get("FailedEntryCount") or not refused:
            return 0, set()
        entries = [entry for entry, _ in refused]
        codes = {result["ErrorCode"] for _, result in refused}
    return len(entries), codes


def publisher_from_settings() -> Callable[[list[DomainEvent]], None] | None:
    """The publisher for settings.EVENT_BUS_NAME, or None when it is unset."""
    bus_name = getattr(settings, "EVENT_BUS_NAME", None)
    return eventbridge_publisher(bus_name=bus_name) if bus_name else None
