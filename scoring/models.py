"""The task catalog: relational, edited by admins in Django admin.

Scores never live here; they live in DynamoDB (see scoring/store/).
"""

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


class RulesQuerySet(models.QuerySet):
    """Bulk writes that change the scoring rules (``rules_fields``) go
    through ``save()``, a row at a time, so the rules history records each
    change as a plain save does. Other bulk updates stay one UPDATE."""

    rules_fields: frozenset[str] = frozenset()

    def update(self, **kwargs):
        if not self.rules_fields.intersection(kwargs):
            return super().update(**kwargs)
        if self.query.is_sliced:
            raise TypeError("Cannot update a query once a slice has been taken.")
        with transaction.atomic(using=self.db):
            rules_lock()  # first, as scoring.rules takes it: no lock-order deadlock
            # The rows themselves, whatever shape this queryset has (values(), annotations).
            rows = list(self.model._base_manager.using(self.db).filter(pk__in=list(self.values_list("pk", flat=True))))
            for row in rows:
                for name, value in kwargs.items():
                    setattr(row, name, value)
                row.save(update_fields=list(kwargs))
        return len(rows)

    update.alters_data = True

    def bulk_update(self, objs, fields, batch_size=None):
        if not self.rules_fields.intersection(fields):
            return super().bulk_update(objs, fields, batch_size=batch_size)
        objs = list(objs)
        with transaction.atomic(using=self.db):
            rules_lock()
            for obj in objs:
                obj.save(update_fields=list(fields))
        return len(objs)

    bulk_update.alters_data = True


def _resolved(instance: models.Model, field: str) -> None:
    """After a save of ``field`` as an expression (``F("points") + 5``), read
    back the value the database stored."""
    if hasattr(getattr(instance, field), "resolve_expression"):
        instance.refresh_from_db(fields=[field])


class DifficultyQuerySet(RulesQuerySet):
    rules_fields = frozenset({"points"})


class Difficulty(models.Model):
    name = models.CharField(max_length=50, unique=True)
    points = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_POINTS)],
        help_text="Points a player earns for completing a task of this difficulty.")
    ordering = models.PositiveSmallIntegerField(default=0, help_text="Lower comes first.")
    question_count = models.PositiveSmallIntegerField(
        default=5, help_text="Questions in a challenge of this difficulty.")
    min_seconds = models.FloatField(
        default=6.0, help_text="The fastest credible honest completion of a challenge, in seconds; "
        "faster answers are refused.")
    review_seconds = models.FloatField(
        null=True, blank=True, help_text="Verified completions faster than this, in seconds, are held for staff "
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
            _resolved(self, "points")
            if before is not None and before != self.points and not recorded:
                _forward_recorded(summary=f"{self.name} {before} → {self.points} from now on", difficulty=self,
                                  before={"points": before}, after={"points": self.points},
                                  rescore=dict.fromkeys(self.tasks.values_list("slug", flat=True), self.points))

    def clean(self) -> None:
        if self.review_seconds is not None and self.min_seconds is not None and self.review_seconds < self.min_seconds:
            raise ValidationError({"review_seconds": "The review time cannot be below min_seconds: "
                                   "faster completions are already refused."})


class TaskQuerySet(RulesQuerySet):
    rules_fields = frozenset({"difficulty", "difficulty_id"})

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
        permissions = [("submit_trusted", "Can submit completions without a challenge (a trusted game server)")]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        """A save that moves the task to another difficulty records a rules
        change (forward), as a Difficulty's points change does."""
        recorded = self.__dict__.pop("rules_change_recorded", False)
        with transaction.atomic():
            if self.pk and not recorded:
                rules_lock()
            before = (Task.objects.filter(pk=self.pk).select_related("difficulty").first()
                      if self.pk and not recorded else None)
            super().save(*args, **kwargs)
            _resolved(self, "difficulty_id")
            if before is not None and before.difficulty_id != self.difficulty_id:
                old, new = before.difficulty, self.difficulty
                _forward_recorded(summary=f"{self.title} {old.name} → {new.name} ({old.points} → {new.points}) "
                                  "from now on",
                                  task=self, before={"difficulty": old.name, "points": old.points},
                                  after={"difficulty": new.name, "points": new.points},
                                  rescore={self.slug: new.points})

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
        default=0, help_text="Adjustments written, over every run (a run killed mid-way may leave up to 49 of its "
        "own uncounted).")
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


def _forward_recorded(**change) -> None:
    """The rules change of a save made outside ``scoring.rules`` (a shell,
    a script, a fixture): forward, as a plain save has always been."""
    RulesChange.objects.create(created_by="a save outside rules_change", mode=RulesChange.Mode.FORWARD,
                               status=RulesChange.Status.APPLIED, applied_at=timezone.now(), **change)
