import re
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scoring import store
from scoring.domain import utcnow
from scoring.redrive import BATCH_SIZE, Redrive, RedriveResult, stranded, written_at
from scoring.stream.filters import InvalidFilter, parse_patterns

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class DurationTooLong(ValueError):
    """A well-formed duration too long to subtract from now."""


def duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h`` or ``1d``; DurationTooLong for one that
    reaches back before the year 1, ValueError for anything else."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match:
        raise ValueError(text)
    try:
        age = timedelta(**{_UNITS[match[2]]: float(match[1])})
        utcnow() - age
    except OverflowError:
        raise DurationTooLong(text) from None
    return age


class Command(BaseCommand):
    help = (
        "Process the submissions still pending after --older-than, whose stream record no consumer will deliver "
        "again: trimmed after the stream's 24 hours (the consumer logged DATA LOSS), or in a batch Lambda gave up "
        "on. They go through the same processing as a stream batch, exactly once, so it is safe beside a running "
        "consumer and safe to run again. A full scan of the table."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", default="1h", metavar="AGE",
                            help="Only submissions written longer ago than this: 90s, 30m, 2h, 1d (default: 1h). "
                                 "Younger ones are left to the consumer.")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N",
                            help=f"Submissions per batch (default: {BATCH_SIZE}).")
        parser.add_argument("--limit", type=int, metavar="N",
                            help="Process only the N oldest (default: all); run again for the rest. Only those N are "
                                 "held in memory.")
        parser.add_argument("--dry-run", action="store_true", help="List them; process nothing. (-v 2 lists them too.)")

    def handle(self, *args, older_than="1h", batch_size=BATCH_SIZE, limit=None, dry_run=False, **options):
        try:
            age = duration(older_than)
        except DurationTooLong:
            raise CommandError(f"--older-than {older_than!r} is too long: it reaches back before the year 1. Give a "
                               "shorter age, as in 30d.") from None
        except ValueError:
            raise CommandError(f"--older-than {older_than!r}: give a number and a unit, as in 90s, 30m, 2h or 1d.") \
                from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        try:
            filters = parse_patterns(settings.STREAM_FILTERS)
        except (InvalidFilter, ValueError) as exc:
            raise CommandError(f"Setting STREAM_FILTERS is invalid: {exc}") from None
        now = utcnow()
        try:
            found = stranded(older_than=age, now=now, limit=limit, filters=filters)
        except store.StoreError as exc:
            raise CommandError(f"Cannot scan the table for pending submissions: {exc}") from None
        if dry_run or options["verbosity"] >= 2:
            for submission in found.stranded:
                self.stdout.write(f"pending: {submission.id} player {submission.player_id}, {_what(submission)}, "
                                  f"written {written_at(submission).isoformat()} "
                                  f"({_ago(now - written_at(submission))} ago)")
        for unreadable in found.unreadable:
            self.stderr.write(f"unreadable: {unreadable}")
        others = [f"{found.younger} younger left to the consumer"]
        if found.beyond_limit:
            others.append(f"{found.beyond_limit} more beyond --limit, for the next run")
        if found.filtered:
            others.append(f"{found.filtered} left out by STREAM_FILTERS")
        self.stdout.write(f"{len(found.stranded)} submission(s) pending for over {older_than} "
                          f"({', '.join(others)})" + ("; nothing processed (--dry-run)" if dry_run else ""))
        result = RedriveResult()
        if not dry_run:
            try:
                for result in Redrive(batch_size=batch_size).run(found.stranded):
                    self.stdout.write(f"processed {result.processed} of {len(found.stranded)}")
            except store.StoreError as exc:  # an outage: CatalogUnavailable included
                raise CommandError(f"Stopped after {result.processed} of {len(found.stranded)}: {exc}. Run it again "
                                   "once that is back: processing is idempotent, so nothing is counted twice.") \
                    from None
            summary = (f"re-drove {len(found.stranded)} submission(s): {result.applied} applied, {result.rejected} "
                       f"rejected, {result.held} held, {result.skipped} settled meanwhile, {len(result.failed)} failed")
            self.stdout.write(self.style.WARNING(summary) if result.failed else self.style.SUCCESS(summary))
        for submission_id, error in result.failed:
            self.stderr.write(f"failed: {submission_id}: {error}")
        problems = []
        if found.unreadable:
            problems.append(f"{len(found.unreadable)} pending item(s) are not submissions (unreadable: above)")
        if result.failed:
            problems.append(f"{len(result.failed)} submission(s) failed and stay pending (failed: above; the log "
                            "has each traceback)" + (
                                "; being the oldest, they come first again in the next run: fix them, or raise "
                                "--limit past them" if found.beyond_limit else ""))
        if problems:
            raise CommandError("; ".join(problems) + ".")


def _what(submission) -> str:
    if submission.review_of:
        return f"review of {submission.review_of}"
    if submission.rules_change:
        return f"rules change {submission.rules_change}"
    return f"task {submission.task}"


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min"
