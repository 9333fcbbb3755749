"""redrive_pending: submissions whose stream record is gone (trimmed, or
given up by Lambda) are processed as a stream batch would, exactly once."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gameapp.processes import free_port
from scoring import catalog, processing, services, store
from scoring.domain import Review, Status, Submission, review_id, utcnow
from scoring.redrive import Redrive, stranded
from tests.records import stream_record

pytestmark = [pytest.mark.usefixtures("table"), pytest.mark.django_db]

# The seeded catalog's points; "retired-task" does not exist: rejected.
POINTS = {"warm-up-sums": 10, "big-products": 50}


def put(task="warm-up-sums", *, player="p1", age=timedelta(hours=2), elapsed_ms=60_000) -> Submission:
    """A submission the API wrote ``age`` ago, still pending."""
    submission = Submission(id=str(uuid.uuid4()), player_id=player, player_name=player.upper(), task=task,
                            submitted_at=utcnow() - age, elapsed_ms=elapsed_ms, verified_by="challenge")
    store.score_put(submission=submission)
    return submission


def process(*submissions: Submission) -> processing.BatchResult:
    """What the consumer does with their records, when it gets them."""
    points_for, version = catalog.points_versioned()
    return processing.records_process([stream_record(s) for s in submissions], points_for=points_for,
                                      rules_version=version, hold_rules=catalog.hold_rules())


def redrive(*args: str) -> str:
    out = StringIO()
    call_command("redrive_pending", *args, stdout=out)
    return out.getvalue()


def status_of(submission: Submission) -> tuple:
    stored = store.score_get(submission_id=submission.id)
    return stored.status, stored.points


def totals() -> dict[str, int]:
    return {p: t.total for p, t in store.totals_get_many(player_ids=["p1", "p2"]).items()}


def test_stranded_submissions_count_once_and_young_ones_are_left_to_the_consumer():
    stranded_ones = [put("warm-up-sums"), put("big-products", player="p2"), put("retired-task")]
    young = put(age=timedelta(minutes=5))
    settled = put("big-products")
    process(settled)

    out = redrive("--older-than", "1h")

    assert "re-drove 3 submission(s): 2 applied, 1 rejected, 0 held, 0 settled meanwhile" in out
    assert f"pending: {stranded_ones[1].id} player p2, task big-products, written " in out
    assert [status_of(s) for s in stranded_ones] == [(Status.APPLIED, 10), (Status.APPLIED, 50),
                                                     (Status.REJECTED, None)]
    assert status_of(young) == (Status.PENDING, None)
    assert status_of(settled) == (Status.APPLIED, 50)
    assert totals() == {"p1": 60, "p2": 50}
    # The record was only late: the consumer delivers it after all.
    assert process(stranded_ones[0]).skipped == 1
    # Run again: nothing is pending for that long any more.
    assert "0 submission(s) pending for over 1h" in redrive("--older-than", "1h")
    assert totals() == {"p1": 60, "p2": 50}


def test_a_redrive_beside_the_consumer_on_the_same_records_counts_them_once():
    """The consumer and a re-drive both process one batch at the same time
    (the re-drive read it as pending before the consumer settled it)."""
    submissions = [put(task, player=player) for player in ("p1", "p2") for task in POINTS]
    found = stranded(older_than=timedelta(hours=1))
    process(*submissions)
    result = list(Redrive().run(found))[-1]
    assert (result.applied, result.skipped) == (0, 4)
    assert totals() == {"p1": 60, "p2": 60}


def test_a_stranded_review_decides_its_held_submission(settings):
    """A review is written when staff decide, though it carries the held
    submission's play time: its age is counted from the decision."""
    settings.SCORE_HOLD_RULES = True
    fast = put("big-products", elapsed_ms=1_000)  # under the difficulty's review time
    process(fast)
    assert store.score_get(submission_id=fast.id).status is Status.HELD
    assert services.submission_review(submission_id=fast.id, review=Review.APPROVE, reviewer="staff")

    assert "0 submission(s) pending for over 1h" in redrive("--older-than", "1h")
    out = redrive("--older-than", "0s")

    assert f"pending: {review_id(fast.id)} player p1, review of {fast.id}, written " in out
    assert "re-drove 1 submission(s): 1 applied" in out
    assert status_of(fast) == (Status.APPLIED, 50)
    assert totals() == {"p1": 50}


def test_a_dry_run_lists_them_and_writes_nothing(item_count, db_writes):
    stranded_ones = [put(), put("big-products")]
    items = item_count()
    with db_writes() as captured:
        out = redrive("--older-than", "30m", "--dry-run")
    assert out.count("pending: ") == 2
    assert "2 submission(s) pending for over 30m; nothing processed (--dry-run)" in out
    assert [status_of(s) for s in stranded_ones] == [(Status.PENDING, None)] * 2
    assert item_count() == items
    assert captured.writes == []


@pytest.mark.parametrize("older_than", ["1 hour", "90", "-5m", "1w", ""])
def test_a_bad_age_is_refused_before_anything_is_read(older_than, item_count):
    put()
    items = item_count()
    with pytest.raises(CommandError, match="give a number and a unit, as in 90s, 30m, 2h or 1d"):
        redrive(f"--older-than={older_than}")
    assert item_count() == items


def test_a_bad_batch_size_is_refused():
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        redrive("--batch-size", "0")


def test_dynamodb_unreachable_is_a_clear_error(settings, moto_server):
    settings.DYNAMODB_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    with pytest.raises(CommandError, match="Cannot scan the table for pending submissions: .*Could not connect"):
        redrive()
    settings.DYNAMODB_ENDPOINT_URL = moto_server  # for the table's teardown


def test_an_outage_midway_stops_it_and_a_second_run_finishes_the_rest(settings, moto_server, capsys):
    """Stopped between batches by DynamoDB going away, it says how far it
    got; run again, it processes the rest, the first ones counted once."""
    submissions = [put(task) for task in ("warm-up-sums", "big-products", "warm-up-sums")]
    runs = Redrive(batch_size=2).run(stranded(older_than=timedelta(hours=1)))
    assert next(runs).processed == 2
    settings.DYNAMODB_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(store.StoreUnavailable):
        next(runs)
    settings.DYNAMODB_ENDPOINT_URL = moto_server
    assert "re-drove 1 submission(s): 1 applied" in redrive("--older-than", "1h")
    assert [status_of(s)[0] for s in submissions] == [Status.APPLIED] * 3
    assert totals() == {"p1": 70}
