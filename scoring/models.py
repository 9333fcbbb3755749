"""The task catalog: relational, edited by admins in Django admin.

Scores never live here; they live in DynamoDB (see scoring/store/).
"""

from django.db import models


class Difficulty(models.Model):
    name = models.CharField(max_length=50, unique=True)
    points = models.PositiveIntegerField(help_text="Points a player earns for completing a task of this difficulty.")
    ordering = models.PositiveSmallIntegerField(default=0, help_text="Lower comes first.")

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

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["difficulty__ordering", "title"]

    def __str__(self) -> str:
        return self.title
