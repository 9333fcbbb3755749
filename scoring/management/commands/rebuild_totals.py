from django.core.management.base import BaseCommand, CommandError

from scoring import store
from scoring.drift import drift_fix, drifts_find


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
            drifts = drifts_find(progress=not no_progress)
            fixed = 0
            for drift in drifts if fix else []:
                if drift_fix(drift):
                    fixed += 1
                else:
                    self.stderr.write(f"player {drift.player_id} changed while fixing; run again to re-check it")
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        for drift in drifts:
            self.stdout.write(f"drift: player {drift.player_id}: stored {drift.stored}, expected {drift.expected} "
                              f"({drift.expected - drift.stored:+d})")
        summary = f"{len(drifts)} player(s) drifted"
        if fix:
            summary += f"; fixed {fixed}"
        self.stdout.write(self.style.SUCCESS(summary) if not drifts or fix else self.style.WARNING(summary))
