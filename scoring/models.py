"""The task catalog: relational, edited by admins in Django admin.

Scores never live here; they live in DynamoDB (see scoring/store/).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from scoring.challenges import QuestionSpec, level_for, spec_with


def ops_validate(value: str) -> None:
    try:
        spec_with(QuestionSpec(), ops=value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def ranges_validate(value) -> None:
    try:
        spec_with(QuestionSpec(), ranges=value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


# What a difficulty may be worth: far above any sensible value, and well
# inside every integer the catalog and the totals hold.
MAX_POINTS = 1_000_000
# A challenge's questions: the API takes at most this many answers.
MAX_QUESTIONS = 100


class RulesQuerySet(models.QuerySet):
    """A bulk ``update()`` of the scoring rules (``rule_field``) records
    each row's change in the rules history, as a plain save does: Django's
    own UPDATE, between two reads of the rows' rule under the rules lock.
    ``bulk_update()`` updates through it, and so do a related manager's
    ``add()`` and ``set()`` (the model's base manager is this one)."""

    rule_field = ""  # the field whose change is recorded

    def update(self, **kwargs):
        field = self.model._meta.get_field(self.rule_field)
        if field.name not in kwargs and field.attname not in kwargs:
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            rules_lock()  # first, as scoring.rules takes it: no lock-order deadlock
            pks = list(self.values_list("pk", flat=True))
            before = self._rule_of(pks)
            # Exactly the rows read: one that came to match meanwhile (a
            # task created since) would otherwise move unrecorded.
            updated = models.QuerySet.update(self.filter(pk__in=pks), **kwargs)
            for pk, value in self._rule_of(pks).items():
                if before.get(pk) != value:
                    self._record(pk, before[pk])
        return updated

    update.alters_data = True

    def _rule_of(self, pks: list) -> dict:
        column = self.model._meta.get_field(self.rule_field).attname
        return dict(self.model._base_manager.using(self.db).filter(pk__in=pks).values_list("pk", column))

    def _record(self, pk, before) -> None:
        raise NotImplementedError


class DifficultyQuerySet(RulesQuerySet):
    rule_field = "points"

    def _record(self, pk, before) -> None:
        _points_recorded(pk, before=before)


class Difficulty(models.Model):
    name = models.CharField(max_length=50, unique=True)
    points = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_POINTS)],
        help_text="Points a player earns for completing a task of this difficulty.")
    ordering = models.PositiveSmallIntegerField(
        default=0, help_text="Lower comes first. It also sets the size of the numbers in the questions of tasks "
        "without ranges of their own: 1 (or 0) units, 2 tens, 3 and above hundreds.")
    question_count = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(MAX_QUESTIONS)],
        help_text=f"Questions in a challenge of this difficulty (1 to {MAX_QUESTIONS}).")
    min_seconds = models.FloatField(
        default=6.0, validators=[MinValueValidator(0.0)],
        help_text="The fastest credible honest completion of a challenge, in seconds; faster answers are refused. "
        "Below the time a challenge lasts (CHALLENGE_TTL_SECONDS).")
    review_seconds = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)],
        help_text="Verified completions faster than this, in seconds, are held for staff "
        "review before they count (above min_seconds; empty: never held for speed).")

    objects = DifficultyQuerySet.as_manager()

    class Meta:
        ordering = ["ordering", "points"]
        verbose_name_plural = "difficulties"

    def __str__(self) -> str:
        return f"{self.name} ({self.points} pts)"

    def save(self, *args, **kwargs):
        """A save that changes the points records a rules change (forward),
        whoever makes it: ``scoring.rules`` records its own, with its mode
        and reason, and marks the instance so this one is not."""
        recorded = self.__dict__.pop("rules_change_recorded", False)
        with transaction.atomic():
            rules_lock()
            before = Difficulty.objects.filter(pk=self.pk).values_list("points", flat=True).first() if self.pk else None
            super().save(*args, **kwargs)
            if before is not None and not recorded:
                _points_recorded(self.pk, before=before)

    def clean(self) -> None:
        if self.min_seconds is not None and self.min_seconds >= settings.CHALLENGE_TTL_SECONDS:
            raise ValidationError({"min_seconds": f"A challenge lasts {settings.CHALLENGE_TTL_SECONDS:g} s "
                                   "(CHALLENGE_TTL_SECONDS): with this floor none could be completed."})
        if self.review_seconds is not None and self.min_seconds is not None and self.review_seconds < self.min_seconds:
            raise ValidationError({"review_seconds": "The review time cannot be below min_seconds: "
                                   "faster completions are already refused."})


class TaskQuerySet(RulesQuerySet):
    rule_field = "difficulty"

    def _record(self, pk, before) -> None:
        _move_recorded(pk, before=before)

    def active(self):
        return self.filter(active=True)


class Task(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    difficulty = models.ForeignKey(Difficulty, on_delete=models.PROTECT, related_name="tasks")
    active = models.BooleanField(default=True, help_text="Inactive tasks cannot be submitted.")
    ops = models.CharField(max_length=4, default="+-*/", validators=[ops_validate],
                           help_text="The operations its challenges ask: any of + - * /.")
    ranges = models.JSONField(
        default=dict, blank=True, validators=[ranges_validate],
        help_text='Operand ranges, overriding the difficulty\'s level, e.g. {"factor": [2, 10], "factor2": [2, 10]}. '
        "Keys: add, factor, factor2, divisor, quotient.")

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["difficulty__ordering", "title"]
        permissions = [("submit_trusted", "Can submit completions without a challenge (a trusted game server)"),
                       ("review_submissions", "Can approve, reject and retry submissions (staff review and pipeline)")]
        # Related managers (``difficulty.tasks.add(task)``) update through
        # it, so that moving a task that way is recorded too.
        base_manager_name = "objects"

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        """A save that moves the task to another difficulty records a rules
        change (forward), as a Difficulty's points change does."""
        recorded = self.__dict__.pop("rules_change_recorded", False)
        with transaction.atomic():
            if self.pk and not recorded:
                rules_lock()
            before = (Task.objects.filter(pk=self.pk).values_list("difficulty_id", flat=True).first()
                      if self.pk and not recorded else None)
            super().save(*args, **kwargs)
            if before is not None:
                _move_recorded(self.pk, before=before)

    def question_spec(self) -> tuple[int, QuestionSpec]:
        """(question count, spec) of this task's challenges: its difficulty's
        level, with this task's operations and ranges."""
        spec = spec_with(level_for(self.difficulty.ordering), ops=self.ops, ranges=self.ranges)
        return self.difficulty.question_count, spec


class RulesChange(models.Model):
    """One change of the scoring rules: a difficulty's points, or a task's
    difficulty. Append-only: written by ``scoring.rules`` (the admin forms,
    ``manage.py rules_change``, or any save that changes points), never
    edited. Its id is the rules version: every applied outcome records the
    version it was scored under.

    ``rescore`` maps each task the change affects to the points it earns
    after it. A retroactive change re-scores every applied submission of
    those tasks, through one adjustment per affected player, each a SCORE
    item the stream applies exactly once (docs/consumer.md).
    """

    class Mode(models.TextChoices):
        FORWARD = "forward", "Forward: submissions processed from now on"
        RETROACTIVE = "retroactive", "Retroactive: re-score every applied submission of the affected tasks"

    class Status(models.TextChoices):
        APPLYING = "applying", "Applying: writing adjustments"
        APPLIED = "applied", "Applied"

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, help_text="Who made it: a username, or how it was made.")
    reason = models.TextField(blank=True)
    mode = models.CharField(max_length=12, choices=Mode.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    difficulty = models.ForeignKey(Difficulty, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="The difficulty whose points changed.")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             help_text="The task that moved to another difficulty.")
    summary = models.CharField(max_length=200, help_text='In words, e.g. "Hard re-scored 50 → 60".')
    before = models.JSONField(help_text="The rule before, e.g. {\"points\": 50}.")
    after = models.JSONField(help_text="The rule after.")
    rescore = models.JSONField(help_text="Task slug -> the points its submissions earn after the change.")
    players_affected = models.PositiveIntegerField(null=True, blank=True)
    submissions_affected = models.PositiveIntegerField(null=True, blank=True)
    points_delta = models.IntegerField(null=True, blank=True, help_text="As previewed when it was applied.")
    adjustments_written = models.PositiveIntegerField(
        default=0, help_text="Adjustments written, by every run and by the stream consumer (a run killed mid-way "
        "may leave up to 49 of its own uncounted; a consumer killed just after writing one, that one).")
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary} ({self.mode})"

    @property
    def version(self) -> int:
        return self.pk


def rules_lock() -> dict:
    """Serialize rules changes, inside a transaction: every difficulty row
    is locked (on databases that lock rows), so rules versions (ids) are
    assigned in the order the changes take effect. Returns the rows by id."""
    return {d.pk: d for d in Difficulty.objects.select_for_update().order_by("pk")}


# The rules as stored are read back, not taken from the instance saved: it
# may hold an expression (F("points") + 5) or another row's stale copy.


def _points_recorded(difficulty_pk: int, *, before: int) -> None:
    """Record a difficulty's points moving from ``before``, if they did."""
    difficulty = Difficulty._base_manager.get(pk=difficulty_pk)
    if difficulty.points != before:
        _forward_recorded(summary=f"{difficulty.name} {before} → {difficulty.points} from now on",
                          difficulty=difficulty, before={"points": before}, after={"points": difficulty.points},
                          rescore=dict.fromkeys(difficulty.tasks.values_list("slug", flat=True), difficulty.points))


def _move_recorded(task_pk: int, *, before: int) -> None:
    """Record a task moving from difficulty ``before``, if it did."""
    task = Task._base_manager.get(pk=task_pk)
    if task.difficulty_id == before:
        return
    difficulties = Difficulty._base_manager.in_bulk([before, task.difficulty_id])
    old, new = difficulties[before], difficulties[task.difficulty_id]
    _forward_recorded(summary=f"{task.title} {old.name} → {new.name} ({old.points} → {new.points}) from now on",
                      task=task, before={"difficulty": old.name, "points": old.points},
                      after={"difficulty": new.name, "points": new.points}, rescore={task.slug: new.points})


def _forward_recorded(**change) -> None:
    """The rules change of a save made outside ``scoring.rules`` (a shell,
    a script, a fixture): forward, as a plain save has always been."""
    RulesChange.objects.create(created_by="a save outside rules_change", mode=RulesChange.Mode.FORWARD,
                               status=RulesChange.Status.APPLIED, applied_at=timezone.now(), **change)
