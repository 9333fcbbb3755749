import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from scoring import store
from scoring.domain import utcnow
from scoring.redrive import BATCH_SIZE, Redrive, stranded, written_at

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h`` or ``1d``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match:
        raise ValueError(text)
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


class Command(BaseCommand):
    help = (
        "Process the submissions still pending after --older-than, whose stream record no consumer will deliver "
        "again: trimmed after the stream's 24 hours (the consumer logged DATA LOSS), or in a batch Lambda gave up "
        "on. They go through the same processing as a stream batch, exactly once, so it is safe beside a running "
        "consumer and safe to run again. A full scan of the table."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", default="1h",
                            help="Only submissions written longer ago than this: 90s, 30m, 2h, 1d (default: 1h). "
                                 "Younger ones are left to the consumer.")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                            help=f"Submissions per batch (default: {BATCH_SIZE}).")
        parser.add_argument("--dry-run", action="store_true", help="List them; process nothing.")

    def handle(self, *args, older_than="1h", batch_size=BATCH_SIZE, dry_run=False, **options):
        try:
            age = duration(older_than)
        except ValueError:
            raise CommandError(f"--older-than {older_than!r}: give a number and a unit, as in 90s, 30m, 2h or 1d.") \
                from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        now = utcnow()
        try:
            found = stranded(older_than=age, now=now)
        except store.StoreError as exc:
            raise CommandError(f"Cannot scan the table for pending submissions: {exc}") from None
        for submission in found:
            what = f"review of {submission.review_of}" if submission.review_of else (
                f"rules change {submission.rules_change}" if submission.rules_change else f"task {submission.task}")
            self.stdout.write(f"pending: {submission.id} player {submission.player_id}, {what}, written "
                              f"{written_at(submission).isoformat()} ({_ago(now - written_at(submission))} ago)")
        if dry_run or not found:
            self.stdout.write(f"{len(found)} submission(s) pending for over {older_than}"
                              + ("; nothing processed (--dry-run)" if dry_run and found else ""))
            return
        result = None
        try:
            for result in Redrive(batch_size=batch_size).run(found):
                self.stdout.write(f"processed {result.processed} of {len(found)}")
        except store.StoreError as exc:  # CatalogUnavailable included
            done = result.processed if result else 0
            raise CommandError(f"Stopped after {done} of {len(found)}: {exc}. Run it again once that is back: "
                               "processing is idempotent, so nothing is counted twice.") from None
        self.stdout.write(self.style.SUCCESS(
            f"re-drove {len(found)} submission(s): {result.applied} applied, {result.rejected} rejected, "
            f"{result.held} held, {result.skipped} settled meanwhile"))


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min"
