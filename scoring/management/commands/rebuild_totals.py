from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from scoring import store
from scoring.domain import PlayerTotal, Status


class Command(BaseCommand):
    help = (
        "Recompute every player's total from the applied SCORE items and report drift. "
        "With --fix, correct the TOTAL items. DynamoDB stays the source of truth."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="Write the recomputed totals where they drift.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, fix=False, no_progress=False, **options):
        try:
            drifts = self._drifts(progress=not no_progress)
            fixed = self._fix(drifts) if fix else 0
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        for player_id, (stored, expected) in sorted(drifts.items()):
            self.stdout.write(f"drift: player {player_id}: stored {stored}, expected {expected} "
                              f"({expected - stored:+d})")
        summary = f"{len(drifts)} player(s) drifted"
        if fix:
            summary += f"; fixed {fixed}"
        self.stdout.write(self.style.SUCCESS(summary) if not drifts or fix else self.style.WARNING(summary))

    def _drifts(self, *, progress: bool) -> dict[str, tuple[int, int]]:
        """player -> (stored total, expected total), for players that differ.

        Expected = points of applied SCORE items, plus points the TOTAL holds
        in ``pending`` for submissions whose SCORE item is still pending
        (counted, outcome not written yet: that is not drift).
        """
        expected: Counter = Counter()
        pending_scores: set[str] = set()
        approx = store.table_item_count_approx()
        for submission in tqdm(store.scores_scan(), total=approx or None, unit="score",
                               desc="scanning scores", disable=not progress):
            if submission.status is Status.APPLIED:
                expected[submission.player_id] += submission.points or 0
            elif submission.status is Status.PENDING:
                pending_scores.add(submission.id)
        drifts = {}
        self._totals: dict[str, PlayerTotal] = {}
        for total in store.totals_scan():
            self._totals[total.player_id] = total
            should = expected.pop(total.player_id, 0) + sum(
                points for sub_id, points in total.pending.items() if sub_id in pending_scores)
            if should != total.total:
                drifts[total.player_id] = (total.total, should)
        for player_id, should in expected.items():  # applied points but no TOTAL item at all
            if should:
                drifts[player_id] = (0, should)
        return drifts

    def _fix(self, drifts: dict[str, tuple[int, int]]) -> int:
        fixed = 0
        for player_id, (_, should) in drifts.items():
            current = self._totals.get(player_id) or PlayerTotal(player_id=player_id, player_name=player_id)
            new = PlayerTotal(player_id=player_id, player_name=current.player_name, total=should,
                              version=current.version + 1, pending=current.pending,
                              reached_at_ms=current.reached_at_ms, windows=current.windows,
                              rejected=current.rejected, on_leaderboard=current.on_leaderboard or should > 0)
            if store.total_put_if_version(total=new, expected_version=current.version):
                fixed += 1
            else:
                self.stderr.write(f"player {player_id} changed while fixing; run again to re-check it")
        return fixed
