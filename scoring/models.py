"""The task catalog: relational, edited by admins in Django admin.

Scores never live here; they live in DynamoDB (see scoring/store/).
"""

from django.core.exceptions import ValidationError
from django.db import models

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


class Difficulty(models.Model):
    name = models.CharField(max_length=50, unique=True)
    points = models.PositiveIntegerField(help_text="Points a player earns for completing a task of this difficulty.")
    ordering = models.PositiveSmallIntegerField(default=0, help_text="Lower comes first.")
    question_count = models.PositiveSmallIntegerField(
        default=5, help_text="Questions in a challenge of this difficulty.")
    min_seconds = models.FloatField(
        default=6.0, help_text="The fastest credible honest completion of a challenge, in seconds; "
        "faster answers are refused.")
    review_seconds = models.FloatField(
        null=True, blank=True, help_text="Verified completions faster than this, in seconds, are held for staff "
        "review before they count (above min_seconds; empty: never held for speed).")

    class Meta:
        ordering = ["ordering", "points"]
        verbose_name_plural = "difficulties"

    def __str__(self) -> str:
        return f"{self.name} ({self.points} pts)"

    def clean(self) -> None:
        if self.review_seconds is not None and self.min_seconds is not None and self.review_seconds < self.min_seconds:
            raise ValidationError({"review_seconds": "The review time cannot be below min_seconds: "
                                   "faster completions are already refused."})


class TaskQuerySet(models.QuerySet):
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

    def question_spec(self) -> tuple[int, QuestionSpec]:
        """(question count, spec) of this task's challenges: its difficulty's
        level, with this task's operations and ranges."""
        spec = spec_with(level_for(self.difficulty.ordering), ops=self.ops, ranges=self.ranges)
        return self.difficulty.question_count, spec
