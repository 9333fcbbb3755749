"""The task catalog: relational, edited by admins in Django admin.

Scores never live here; they live in DynamoDB (see scoring/store/).
"""

from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import models

from scoring.challenges import OPS, QuestionSpec, level_for


def ops_validate(value: str) -> None:
    if not value or any(op not in OPS for op in value) or len(set(value)) != len(value):
        raise ValidationError(f"Use each of {' '.join(OPS)} at most once, at least one of them.")


def ranges_validate(value) -> None:
    fields = set(QuestionSpec.__dataclass_fields__) - {"ops"}
    if not isinstance(value, dict) or set(value) - fields:
        raise ValidationError(f"A JSON object with some of: {', '.join(sorted(fields))}.")
    try:
        QuestionSpec(**{name: tuple(bounds) for name, bounds in value.items()})
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Each range is [low, high], whole numbers, low <= high: {exc}") from exc


class Difficulty(models.Model):
    name = models.CharField(max_length=50, unique=True)
    points = models.PositiveIntegerField(help_text="Points a player earns for completing a task of this difficulty.")
    ordering = models.PositiveSmallIntegerField(default=0, help_text="Lower comes first.")
    question_count = models.PositiveSmallIntegerField(
        default=5, help_text="Questions in a challenge of this difficulty.")
    min_seconds = models.FloatField(
        default=6.0, help_text="The fastest credible honest completion of a challenge, in seconds; "
        "faster answers are refused.")

    class Meta:
        ordering = ["ordering", "points"]
        verbose_name_plural = "difficulties"

    def __str__(self) -> str:
        return f"{self.name} ({self.points} pts)"


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

    def __str__(self) -> str:
        return self.title

    def question_spec(self) -> tuple[int, QuestionSpec]:
        """(question count, spec) of this task's challenges: its difficulty's
        level, with this task's operations and ranges."""
        _, level = level_for(self.difficulty.ordering)
        ranges = {name: tuple(bounds) for name, bounds in (self.ranges or {}).items()}  # blank may be []
        return self.difficulty.question_count, replace(level, ops=tuple(self.ops), **ranges)
