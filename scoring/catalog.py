"""The task catalog as the stream processor sees it: slug -> points, and the
hold rules."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connections

from scoring.domain import HoldRules
from scoring.models import Task
from scoring.rules import version_subquery
from scoring.store import StoreUnavailable


class CatalogUnavailable(StoreUnavailable):
    """The relational database (the catalog, the rules history) failed: an
    outage, as DynamoDB's is, not a record's fault. The stream worker backs
    off and retries the whole batch; nothing is dead-lettered for it."""

    service = "The catalog database"


@contextmanager
def catalog_available() -> Iterator[None]:
    """Turns the database's errors into CatalogUnavailable. A batch's only
    relational work is reading the catalog and the rules history (and
    counting a missed adjustment), none of it about one record, so any
    DatabaseError there (connection lost, database locked or missing a
    table) is waited out rather than blamed on the batch's records."""
    try:
        yield
    except DatabaseError as exc:
        # A connection opened during the outage may never work again (a
        # SQLite file replaced since, a server that failed over): the retry
        # opens new ones.
        connections.close_all()
        raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc


def points_lookup() -> Callable[[str], int | None]:
    """A lookup of each task's points, loaded now with one query.

    Covers every task, active or not: a submission accepted before its task
    was deactivated still earns its points. Only a task deleted since gives
    None, which rejects the submission. Call it once per batch, so an admin's
    edit applies from the next batch on.
    """
    return points_versioned()[0]


def points_versioned() -> tuple[Callable[[str], int | None], int]:
    """``points_lookup`` and the rules version those points are (the latest
    rules change's id, 0 before any), read in one query: one statement sees
    one snapshot, so the version always goes with the points."""
    rows = list(Task.objects.annotate(rules_version=version_subquery())
                .values_list("slug", "difficulty__points", "rules_version"))
    return dict((slug, points) for slug, points, _ in rows).get, (rows[0][2] or 0) if rows else 0


def hold_rules() -> HoldRules | None:
    """The hold rules now (None when SCORE_HOLD_RULES is off): the burst
    limit from settings, each task's review time from its difficulty. One
    query; call it once per batch, like points_lookup."""
    if not settings.SCORE_HOLD_RULES:
        return None
    review = Task.objects.values_list("slug", "difficulty__review_seconds")
    return HoldRules(burst_count=settings.SCORE_HOLD_BURST_COUNT,
                     burst_window_ms=int(settings.SCORE_HOLD_BURST_SECONDS * 1000),
                     review_ms={slug: int(seconds * 1000) for slug, seconds in review if seconds})
