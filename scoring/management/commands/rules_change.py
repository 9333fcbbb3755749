import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from scoring import rules, store
from scoring.models import RulesChange

USAGE_ERROR = 2  # argparse's status for a bad command line, which these errors are too


class Command(BaseCommand):
    help = (
        "Change a difficulty's points, or move a task to another difficulty, forward (submissions processed from "
        "now on) or retroactively (every applied submission of the affected tasks re-scored, through the stream, "
        "exactly once). --preview shows what a retroactive change would do and writes nothing."
    )

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--difficulty", metavar="NAME", help="The difficulty whose points change (with --points).")
        what.add_argument("--task", metavar="SLUG", help="The task that moves (with --move-to).")
        what.add_argument("--resume", metavar="ID", type=int,
                          help="Write the adjustments of retroactive change ID again (after a crash); writes only "
                          "what is missing.")
        parser.add_argument("--points", type=int, metavar="N", help="The difficulty's new points (a whole number > 0).")
        parser.add_argument("--move-to", metavar="DIFFICULTY_NAME", help="The difficulty the task moves to.")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--retroactive", action="store_const", const=RulesChange.Mode.RETROACTIVE, dest="mode",
                          help="Re-score every applied submission of the affected tasks.")
        mode.add_argument("--forward", action="store_const", const=RulesChange.Mode.FORWARD, dest="mode",
                          help="Only submissions processed from now on get the new points.")
        parser.add_argument("--reason", default="", help="Why: shown to players beside their adjustment.")
        parser.add_argument("--preview", action="store_true", help="Show what the change would do; write nothing.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, **options):
        progress = not options["no_progress"]
        try:
            if options["resume"] is not None:
                flags = {"points": "--points", "move_to": "--move-to", "mode": "--retroactive/--forward",
                         "preview": "--preview"}
                extra = [flag for name, flag in flags.items() if options[name] not in (None, False)]
                if extra:
                    raise CommandError(f"--resume takes no {', '.join(extra)}: it writes a change's missing "
                                       "adjustments.", returncode=USAGE_ERROR)
                return self._resume(options["resume"], as_json=options["json"], progress=progress)
            plan = self._plan(options)
            mode = options["mode"]
            if mode is None:
                raise CommandError("Say --retroactive or --forward: whether past submissions are re-scored.",
                                   returncode=USAGE_ERROR)
            if options["preview"]:
                preview = rules.rules_preview(plan=plan, progress=progress) if mode == RulesChange.Mode.RETROACTIVE \
                    else rules.rules_preview(plan=rules.Plan(plan.subject, plan.change, plan.before, plan.after),
                                             progress=progress)
                self._print_preview(plan, mode, preview, as_json=options["json"])
                return
            change = rules.rules_change_apply(plan=plan, mode=mode, reason=options["reason"],
                                              actor=f"manage.py rules_change ({getpass.getuser()})",
                                              progress=progress)
        except rules.RulesChangeInvalid as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        self._print_change(change, as_json=options["json"])

    def _plan(self, options) -> rules.Plan:
        if options["difficulty"] is not None:
            if options["points"] is None or options["move_to"] is not None:
                raise CommandError("--difficulty takes --points N (and not --move-to).", returncode=USAGE_ERROR)
            return rules.plan_points(difficulty_name=options["difficulty"], points=options["points"])
        if options["move_to"] is None or options["points"] is not None:
            raise CommandError("--task takes --move-to DIFFICULTY_NAME (and not --points).", returncode=USAGE_ERROR)
        return rules.plan_move(task_slug=options["task"], difficulty_name=options["move_to"])

    def _resume(self, change_id: int, *, as_json: bool, progress: bool) -> None:
        change = RulesChange.objects.filter(pk=change_id).first()
        if change is None:
            raise CommandError(f"No rules change #{change_id}.", returncode=USAGE_ERROR)
        try:
            rules.rules_change_adjust(change=change, progress=progress)
        except rules.RulesChangeInvalid as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        self._print_change(change, as_json=as_json)

    def _print_preview(self, plan, mode, preview, *, as_json: bool) -> None:
        shown = {"summary": plan.summary_for(mode), "mode": mode, "rescore": plan.rescore, **preview.as_dict()}
        if as_json:
            self.stdout.write(json.dumps(shown))
            return
        self.stdout.write(f"Preview: {plan.summary_for(mode)} (nothing written)")
        self.stdout.write(f"  {preview.players_affected} of {preview.players} player(s) and "
                          f"{preview.submissions_affected} submission(s) affected, {preview.points_delta:+d} points")
        for title, rows in (("top before", preview.top_before), ("top after", preview.top_after),
                            ("largest moves", preview.moves)):
            self.stdout.write(f"  {title}:")
            for m in rows:
                self.stdout.write(f"    #{m.rank_before or '-'} -> #{m.rank_after or '-'}  {m.player_name}  "
                                  f"{m.total_before} -> {m.total_after} ({m.total_after - m.total_before:+d})")

    def _print_change(self, change: RulesChange, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({
                "rules_change": change.pk, "version": change.pk, "mode": change.mode, "status": change.status,
                "summary": change.summary, "reason": change.reason, "rescore": change.rescore,
                "players_affected": change.players_affected, "submissions_affected": change.submissions_affected,
                "points_delta": change.points_delta, "adjustments_written": change.adjustments_written}))
            return
        line = f"Rules change #{change.pk}: {change.summary} ({change.mode}), {change.status}"
        if change.mode == RulesChange.Mode.RETROACTIVE:
            line += (f"; {change.adjustments_written} adjustment(s) written for the stream to apply "
                     f"({change.points_delta or 0:+d} points over {change.players_affected or 0} player(s))")
        self.stdout.write(self.style.SUCCESS(line))
