import contextlib
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scoring import ranking, store
from scoring.live import LiveUpdater


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
        if not 1 <= segments <= store.SCAN_SEGMENTS_MAX:
            raise CommandError(f"--segments must be a whole number from 1 to {store.SCAN_SEGMENTS_MAX}, not {segments}")
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

        marked = False
        try:
            with _sigterm_unwinds(), ranking.rebuild_lock() as held:
                if not held:
                    # A worker healing the boards after a Redis outage (or another
                    # rebuild): two rebuilds at once would clear each other's boards.
                    raise CommandError("Another process is rebuilding the boards (Redis lock lb:rebuild); "
                                       "try again when it is done.")
                # The boards are cleared before the scan reads the totals back:
                # marked stale first, a rebuild that fails or is stopped part-way
                # leaves them for a consumer to heal (scoring/live.py), as after a
                # Redis outage, instead of half empty until someone notices.
                seen = store.boards_stale_mark(now_ms=int(time.time() * 1000))
                marked = True
                count = ranking.boards_rebuild(store.totals_scan(segments=segments,
                                                                 progress=lambda n: report("read", n)),
                                               progress=lambda n: report("loaded", n))
                store.boards_stale_clear(seen=seen)
            # Browsers were sent nothing while the boards were loaded part-way
            # (scoring/live.py): a new snapshot each, of the rebuilt boards.
            LiveUpdater().announce_rebuilt()
        except ranking.RankingUnavailable as exc:
            raise CommandError(f"Redis is unavailable: {exc}{self._left(marked)}") from None
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}{self._left(marked)}") from None
        except KeyboardInterrupt:
            raise CommandError(f"Stopped{self._left(marked)}") from None
        if not no_progress:
            self.stderr.write(self._line({"read": max(done["read"], count), "loaded": count}, segments))
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the leaderboards from {count:,} player total(s) in "
                                             f"{time.monotonic() - started:.1f} s ({segments} scan segments)."))

    @staticmethod
    def _left(marked: bool) -> str:
        if not marked:
            return ". The boards were not touched."
        return (". The boards are marked stale: a running consumer rebuilds them from DynamoDB once it answers "
                "(or run this command again).")

    @staticmethod
    def _line(done: dict[str, int], segments: int) -> str:
        return f"read {done['read']:,} totals ({segments} segments) ... loaded {done['loaded']:,} into the boards"


@contextlib.contextmanager
def _sigterm_unwinds():
    """A SIGTERM raises KeyboardInterrupt meanwhile, as Ctrl-C does, so the
    rebuild lock is released on the way out instead of held for its timeout."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are the main thread's
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
