import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scoring import store


class Command(BaseCommand):
    help = ("Move every listed TOTAL item into its shard of the leaderboard index (GSI1PK = LEADERBOARD#<shard> "
            "of LEADERBOARD_INDEX_SHARDS): from the unsharded LEADERBOARD partition of an older table, or after "
            "LEADERBOARD_INDEX_SHARDS changed. Safe while consumers run (it sets only GSI1PK, conditionally); "
            "idempotent: run it again and it moves nothing. Progress on stderr.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would move; write nothing.")
        parser.add_argument("--segments", type=int, metavar="N",
                            help="Scan segments read in parallel (default: TOTALS_SCAN_SEGMENTS, "
                                 f"{settings.TOTALS_SCAN_SEGMENTS}).")
        parser.add_argument("--writers", type=int, default=8, metavar="N", help="Threads writing the moves (8).")
        parser.add_argument("--max-rate", type=float, default=500.0, metavar="PER_SECOND",
                            help="At most this many moves a second (500, half of what the old partition's deletes "
                                 "can take); 0: no limit.")
        parser.add_argument("--progress-every", type=float, default=1.0, metavar="SECONDS",
                            help="Report progress at most this often (0: after every page).")
        parser.add_argument("--no-progress", action="store_true", help="No progress lines (logs, CI).")

    def handle(self, *args, dry_run=False, segments=None, writers=8, max_rate=500.0, progress_every=1.0,
               no_progress=False, **options):
        segments = settings.TOTALS_SCAN_SEGMENTS if segments is None else segments
        for name, value, least in (("--segments", segments, 1), ("--writers", writers, 1),
                                   ("--max-rate", max_rate, 0), ("--progress-every", progress_every, 0)):
            if value < least:
                raise CommandError(f"{name} must be >= {least}, not {value:g}")
        if segments > store.SCAN_SEGMENTS_MAX:
            raise CommandError(f"--segments must be at most {store.SCAN_SEGMENTS_MAX}, not {segments}")
        started = time.monotonic()
        last_report = [float("-inf")]

        def report(state: store.IndexMigration) -> None:
            now = time.monotonic()
            if not no_progress and now - last_report[0] >= progress_every:
                last_report[0] = now
                self.stderr.write(self._line(state, segments))

        try:
            result = store.leaderboard_index_migrate(dry_run=dry_run, segments=segments, writers=writers,
                                                     max_rate=max_rate, progress=report)
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        if not no_progress:
            self.stderr.write(self._line(result, segments))
        verb = "would move" if dry_run else "moved"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {result.moved:,} of {result.read:,} listed total(s) into {result.shards} shard(s); "
            f"{result.in_place:,} already in place, {result.changed:,} rewritten meanwhile by a consumer "
            f"({time.monotonic() - started:.1f} s)."))

    @staticmethod
    def _line(state: store.IndexMigration, segments: int) -> str:
        verb = "would move" if state.dry_run else "moved"
        return (f"read {state.read:,} listed totals ({segments} segments) ... {verb} {state.moved:,}, "
                f"{state.in_place:,} in place, {state.changed:,} changed meanwhile")
