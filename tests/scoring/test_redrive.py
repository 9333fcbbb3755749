"""redrive_pending: submissions whose stream record is gone (trimmed, or
given up by Lambda) are processed as a stream batch would, exactly once."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError

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


def redrive(*args: str, **options) -> str:
    out = StringIO()
    call_command("redrive_pending", *args, stdout=out, stderr=out, **options)
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

    out = redrive("--older-than", "1h", verbosity=2)

    assert "3 submission(s) pending for over 1h (1 younger left to the consumer)" in out
    assert "re-drove 3 submission(s): 2 applied, 1 rejected, 0 held, 0 settled meanwhile, 0 failed" in out
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


def test_what_the_consumer_settled_after_the_scan_is_skipped():
    """The records came after all, between the re-drive's scan and its
    processing: the consumer settled them, and the re-drive leaves them."""
    submissions = [put(task, player=player) for player in ("p1", "p2") for task in POINTS]
    found = stranded(older_than=timedelta(hours=1))
    process(*submissions)
    result = list(Redrive().run(found.stranded))[-1]
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
    out = redrive("--older-than", "0s", verbosity=2)

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
    assert "2 submission(s) pending for over 30m (0 younger left to the consumer); nothing processed (--dry-run)" \
        in out
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


@pytest.mark.parametrize("older_than", ["1000000d", "99999999999d", pytest.param("9" * 400 + "s", id="400-digits")])
def test_an_age_too_long_is_refused_as_too_long_not_as_malformed(older_than, item_count):
    put()
    items = item_count()
    with pytest.raises(CommandError) as caught:
        redrive(f"--older-than={older_than}")
    assert str(caught.value) == f"--older-than {older_than!r} is too long: it reaches back before the year 1. Give " \
                                "a shorter age, as in 30d."
    assert item_count() == items


@pytest.mark.parametrize("option", ["--batch-size", "--limit"])
def test_a_batch_size_or_limit_below_one_is_refused(option):
    with pytest.raises(CommandError, match=f"{option} must be at least 1"):
        redrive(option, "0")


def test_a_limit_takes_the_oldest_and_leaves_the_rest_for_the_next_run():
    oldest, middle, newest = (put(age=timedelta(hours=hours)) for hours in (5, 4, 3))
    young = put(age=timedelta(minutes=5))
    out = redrive("--limit", "1")
    assert "1 submission(s) pending for over 1h (1 younger left to the consumer, 2 more beyond --limit, for the " \
           "next run)" in out
    assert [status_of(s)[0] for s in (oldest, middle, newest)] == [Status.APPLIED, Status.PENDING, Status.PENDING]
    assert "re-drove 2 submission(s): 2 applied" in redrive("--limit", "2")
    assert status_of(young)[0] is Status.PENDING
    assert totals() == {"p1": 30}
    with pytest.raises(ValueError, match="limit must be at least 1"):
        stranded(older_than=timedelta(hours=1), limit=0)


def test_failures_among_the_oldest_are_said_to_come_first_again(monkeypatch):
    bad, fine = put(age=timedelta(hours=5)), put(age=timedelta(hours=4))
    real = processing._decide
    monkeypatch.setattr(processing, "_decide", lambda submission, *args: (
        1 / 0 if submission.id == bad.id else real(submission, *args)))
    with pytest.raises(CommandError, match="being the oldest, they come first again in the next run: fix them, or "
                                           "raise --limit past them"):
        redrive("--limit", "1")
    assert [status_of(s)[0] for s in (bad, fine)] == [Status.PENDING, Status.PENDING]


def test_dynamodb_unreachable_is_a_clear_error(settings, moto_server):
    settings.DYNAMODB_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    with pytest.raises(CommandError, match="Cannot scan the table for pending submissions: .*Could not connect"):
        redrive()
    settings.DYNAMODB_ENDPOINT_URL = moto_server  # for the table's teardown


def test_an_outage_midway_stops_it_and_a_second_run_finishes_the_rest(settings, moto_server, monkeypatch):
    """DynamoDB goes away after the first batch: it says how far it got;
    run again, it processes the rest, the first ones counted once."""
    submissions = [put(task) for task in ("warm-up-sums", "big-products", "warm-up-sums")]
    real, calls = processing.records_process, []

    def dynamodb_gone_after_the_first_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            settings.DYNAMODB_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens here
        return real(*args, **kwargs)

    monkeypatch.setattr(processing, "records_process", dynamodb_gone_after_the_first_batch)
    with pytest.raises(CommandError, match=r"^Stopped after 2 of 3: .*Could not connect.* Run it again once that is "
                                           "back: processing is idempotent, so nothing is counted twice.$"):
        redrive("--older-than", "1h", "--batch-size", "2")
    settings.DYNAMODB_ENDPOINT_URL = moto_server
    assert "re-drove 1 submission(s): 1 applied" in redrive("--older-than", "1h")
    assert [status_of(s)[0] for s in submissions] == [Status.APPLIED] * 3
    assert totals() == {"p1": 70}


def test_a_database_outage_midway_stops_it_too(monkeypatch):
    put()
    put()
    real, calls = catalog.points_versioned, []

    def database_gone_after_the_first_batch():
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("unable to open database file")
        return real()

    monkeypatch.setattr(catalog, "points_versioned", database_gone_after_the_first_batch)
    with pytest.raises(CommandError, match=r"^Stopped after 1 of 2: .*OperationalError: unable to open database"):
        redrive("--batch-size", "1")
    assert totals() == {"p1": 10}


def test_one_that_fails_is_listed_and_stays_pending_and_the_others_are_processed(monkeypatch):
    """A bug on one submission: its batch goes again one at a time, the
    others apply, and the command ends with an error naming it."""
    good, bad, also_good = put(), put("big-products"), put()
    real = processing._decide

    def a_bug_on_one(submission, *args):
        if submission.id == bad.id:
            raise ZeroDivisionError("division by zero")
        return real(submission, *args)

    monkeypatch.setattr(processing, "_decide", a_bug_on_one)
    out = StringIO()
    with pytest.raises(CommandError, match=r"^1 submission\(s\) failed and stay pending"):
        call_command("redrive_pending", stdout=out, stderr=out)
    assert "re-drove 3 submission(s): 2 applied, 0 rejected, 0 held, 0 settled meanwhile, 1 failed" in out.getvalue()
    assert f"failed: {bad.id}: ZeroDivisionError: division by zero" in out.getvalue()
    assert [status_of(s) for s in (good, bad, also_good)] == [(Status.APPLIED, 10), (Status.PENDING, None),
                                                             (Status.APPLIED, 10)]
    assert totals() == {"p1": 20}


def test_a_pending_item_that_is_not_a_submission_is_reported_and_the_others_processed():
    fine = put()
    broken = store.submission_to_item(put("big-products"))
    del broken["player_name"]
    store.items_put_many([broken])
    out = StringIO()
    with pytest.raises(CommandError, match=r"^1 pending item\(s\) are not submissions"):
        call_command("redrive_pending", stdout=out, stderr=out)
    assert f"unreadable: {broken['PK']['S']}: KeyError('player_name')" in out.getvalue()
    assert status_of(fine) == (Status.APPLIED, 10)


def test_what_the_stream_filters_leave_out_is_left_out(settings):
    """A deployment whose filters pass only some SCORE items: the re-drive
    processes what the consumer would, no more."""
    kept, left = put(), put()
    settings.STREAM_FILTERS = [{"eventName": ["INSERT"], "dynamodb": {"Keys": {"PK": {"S": [f"SCORE#{kept.id}"]}}}}]
    out = redrive()
    assert "1 submission(s) pending for over 1h (0 younger left to the consumer, 1 left out by STREAM_FILTERS)" in out
    assert (status_of(kept)[0], status_of(left)[0]) == (Status.APPLIED, Status.PENDING)


def test_invalid_stream_filters_are_a_clear_error(settings, item_count):
    put()
    items = item_count()
    settings.STREAM_FILTERS = [{"eventName": [{"no-such-operator": "x"}]}]
    with pytest.raises(CommandError, match="^Setting STREAM_FILTERS is invalid: "):
        redrive()
    assert item_count() == items
