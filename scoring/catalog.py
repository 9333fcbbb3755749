"""The task catalog as the stream processor sees it: slug -> points."""

from collections.abc import Callable

from scoring.models import Task


def points_lookup() -> Callable[[str], int | None]:
    """A lookup of each task's points, loaded now with one query.

    Covers every task, active or not: a submission accepted before its task
    was deactivated still earns its points. Only a task deleted since gives
    None, which rejects the submission. Call it once per batch, so an admin's
    edit applies from the next batch on.
    """
    points = dict(Task.objects.values_list("slug", "difficulty__points"))
    return points.get
