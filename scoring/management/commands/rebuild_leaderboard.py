import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scoring import ranking, store


class Command(BaseCommand):
    help = ("Rebuild the Redis leaderboards (all time, this week, today) from DynamoDB's TOTAL items, read by a "
            "parallel scan; progress on stderr.")

    def add_arguments(self, parser):
        parser.add_argument("--segments", type=int, metavar="N",
                            help="Scan segments read in parallel (default: TOTALS_SCAN_SEGMENTS, "
                                 f"{settings.TOTALS_SCAN_SEGMENTS}).")
        parser.add_argument("--progress-every", type=float, default=1.0, metavar="SECONDS",
                            help="Report progress at most this often (0: after every page read and chunk loaded).")
        parser.add_argument("--no-progress", action="store_true", help="No progress lines (logs, CI).")

    def handle(self, *args, segments=None, progress_every=1.0, no_progress=False, **options):
        segments = settings.TOTALS_SCAN_SEGMENTS if segments is None else segments
        if segments < 1:
            raise CommandError(f"--segments must be a whole number >= 1, not {segments}")
        if progress_every < 0:
            raise CommandError(f"--progress-every must be >= 0 seconds, not {progress_every:g}")
        started = time.monotonic()
        done = {"read": 0, "loaded": 0}
        last_report = [float("-inf")]

        def report(key: str, count: int) -> None:
            done[key] = count
            now = time.monotonic()
            if not no_progress and now - last_report[0] >= progress_every:
                last_report[0] = now
                self.stderr.write(self._line(done, segments))

        try:
            with ranking.rebuild_lock() as held:
                if not held:
                    # A worker healing the boards after a Redis outage (or another
                    # rebuild): two rebuilds at once would clear each other's boards.
                    raise CommandError("Another process is rebuilding the boards (Redis lock lb:rebuild); "
                                       "try again when it is done.")
                count = ranking.boards_rebuild(store.totals_scan(segments=segments,
                                                                 progress=lambda n: report("read", n)),
                                               progress=lambda n: report("loaded", n))
        except ranking.RankingUnavailable as exc:
            raise CommandError(f"Redis is unavailable: {exc}") from None
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        if not no_progress:
            self.stderr.write(self._line({"read": max(done["read"], count), "loaded": count}, segments))
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the leaderboards from {count:,} player total(s) in "
                                             f"{time.monotonic() - started:.1f} s ({segments} scan segments)."))

    @staticmethod
    def _line(done: dict[str, int], segments: int) -> str:
        return f"read {done['read']:,} totals ({segments} segments) ... loaded {done['loaded']:,} into the boards"
