"""AWS Lambda entry point for the DynamoDB Streams event source mapping.

Deploy with ``FunctionResponseTypes=["ReportBatchItemFailures"]`` and the
seed filter. The handler is thin: the catalog and the publisher are built per
invocation, all the work is ``processing.records_process``, and the live
boards get the same after-batch step as ``consume_scores`` (``scoring.live``)
when ``REDIS_URL`` is set. Each invocation first heals boards an earlier one
left stale (a Redis outage), since a container remembers nothing reliably.
"""

import logging
import os

import django
from django.apps import apps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.production")
# Once per container (cold start); already done when imported inside Django.
if not apps.ready:
    django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402

from scoring import catalog, events, processing, rules  # noqa: E402
from scoring.live import LiveUpdater  # noqa: E402
from scoring.stream.filters import matches_any, parse_patterns  # noqa: E402

logger = logging.getLogger(__name__)


def handler(event: dict, context) -> dict:
    """Process a batch; report the records Lambda must deliver again."""
    _drop_stale_db_connections()
    live = LiveUpdater()
    live.heal_if_stale()
    points_for, version = catalog.points_versioned()
    failed = records_failed(
        event.get("Records") or [],
        points_for=points_for,
        rules_version=version,
        hold_rules=catalog.hold_rules(),
        publish=events.publisher_from_settings(),
        on_commit=live.after_batch,
        adjustments_missed=rules.adjustments_missed_write,
    )
    # An empty identifier makes Lambda retry the whole batch, which is right
    # for a record too broken to carry its own sequence number.
    return {"batchItemFailures": [{"itemIdentifier": _sequence_number(r)} for r in failed]}


def records_failed(records: list[dict], *, points_for, publish, on_commit=None, hold_rules=None,
                   rules_version: int = 0, adjustments_missed=None) -> list[dict]:
    """The records to report as failed: none, or the first failure and all after.

    The whole batch goes first, in one pass. If it fails, the records go
    again one at a time, in order: those before the first failure are then
    applied, and Lambda resumes from the lowest reported sequence number.
    Applying is idempotent, so whatever the failed pass already wrote is
    neither lost nor counted twice.
    """
    # The event source mapping's filter should already drop everything else;
    # filtering again keeps a mapping deployed without it from feeding our
    # own writes (MODIFYs of SCORE items) back into processing.
    filters = parse_patterns(settings.STREAM_FILTERS)
    wanted = [i for i, r in enumerate(records) if matches_any(r, filters)]
    try:
        processing.records_process([records[i] for i in wanted], points_for=points_for, hold_rules=hold_rules,
                                   rules_version=rules_version, publish=publish, on_commit=on_commit,
                                   adjustments_missed=adjustments_missed)
        return []
    except Exception:
        logger.exception("Batch of %d records failed; retrying them one at a time", len(wanted))
    for index in wanted:
        try:
            processing.records_process([records[index]], points_for=points_for, hold_rules=hold_rules,
                                       rules_version=rules_version, publish=publish, on_commit=on_commit,
                                       adjustments_missed=adjustments_missed)
        except Exception:
            # PoisonRecord included: reporting it stops the shard here, and the
            # mapping's retry limit and on-failure destination take over.
            logger.exception("Stream record %s failed", _sequence_number(records[index]))
            return records[index:]
    return []


def _sequence_number(record: dict) -> str:
    dynamodb = record.get("dynamodb")
    return str(dynamodb.get("SequenceNumber", "")) if isinstance(dynamodb, dict) else ""


def _drop_stale_db_connections() -> None:
    # Lambda freezes the container between invocations and the database may
    # drop an idle connection meanwhile. Django checks connections at request
    # boundaries, and there are none here. Never inside an atomic block,
    # where closing would break the transaction (a test's, for instance).
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
