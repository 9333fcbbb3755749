from django.core.management.base import BaseCommand, CommandError

from scoring import store
from scoring.drift import counts_total, drift_fix, drifts_confirmed


class Command(BaseCommand):
    help = (
        "Check that every player's total equals the sum of their ledger (applied SCORE items: submissions and "
        "rules-change adjustments) and that its per-task counts add up to it; report drift per player. "
        "With --fix, correct the TOTAL items. DynamoDB stays the source of truth."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="Write the recomputed totals where they drift.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, fix=False, no_progress=False, **options):
        try:
            # Safe beside running consumers: only a drift seen twice with
            # nothing written in between is reported or fixed (scoring/drift.py).
            drifts, changed = drifts_confirmed(progress=not no_progress)
            fixed = 0
            for drift in drifts if fix else []:
                if not drift.total_drift and drift.counts is None:
                    continue  # counts that cannot be rebuilt: reported below, nothing to write
                if drift_fix(drift):
                    fixed += 1
                else:
                    self.stderr.write(f"player {drift.player_id} changed while fixing; run again to re-check it")
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        for drift in drifts:
            if drift.total_drift:
                self.stdout.write(f"drift: player {drift.player_id}: stored {drift.stored}, expected "
                                  f"{drift.expected} ({drift.expected - drift.stored:+d})")
            if drift.counts_drift:
                how = "rebuilt from the ledger with --fix" if drift.counts is not None else (
                    "cannot be rebuilt now (re-scored since, or a batch in flight): a retroactive change may miss "
                    "some; run again")
                self.stdout.write(f"counts drift: player {drift.player_id}: per-task counts add up to "
                                  f"{counts_total(drift.total.counts)}, not {drift.stored}; {how}")
        for player_id in changed:
            self.stdout.write(f"not checked: player {player_id}: their total kept changing while it was checked; "
                              "run it again")
        summary = f"{len(drifts)} player(s) drifted"
        if fix:
            summary += f"; fixed {fixed}"
        if changed:
            summary += f"; {len(changed)} not checked"
        if not drifts and not changed:
            self.stdout.write(self.style.SUCCESS(summary))
            return
        self.stdout.write(self.style.WARNING(summary))
        # Drift left, or a player not checked, is a failure, so that a
        # scheduled check can alert on the exit status.
        problems = []
        if drifts and not fix:
            problems.append(f"{len(drifts)} player(s) drifted (above); --fix corrects them")
        elif fixed < len(drifts):
            problems.append(f"{len(drifts) - fixed} of {len(drifts)} drifted player(s) are not fixed (above); "
                            "run it again")
        if changed:
            problems.append(f"{len(changed)} player(s) could not be checked (above); run it again")
        if problems:
            raise CommandError("; ".join(problems) + ".")
