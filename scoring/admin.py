from django.contrib import admin, messages
from django.db.models import Count

from scoring.models import Difficulty, Task
from scoring.selectors import task_cache_clear


@admin.register(Difficulty)
class DifficultyAdmin(admin.ModelAdmin):
    list_display = ["name", "points", "ordering", "question_count", "min_seconds", "review_seconds",
                    "task_count"]
    list_editable = ["points", "ordering"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_task_count=Count("tasks"))

    @admin.display(description="tasks", ordering="_task_count")
    def task_count(self, obj: Difficulty) -> int:
        return obj._task_count


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "difficulty", "points", "ops", "active"]
    list_filter = ["active", "difficulty"]
    search_fields = ["slug", "title", "description"]
    list_select_related = ["difficulty"]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["activate", "deactivate"]

    @admin.display(description="points", ordering="difficulty__points")
    def points(self, obj: Task) -> int:
        return obj.difficulty.points

    @admin.action(description="Activate selected tasks")
    def activate(self, request, queryset):
        updated = queryset.update(active=True)
        task_cache_clear()  # update() sends no post_save signal
        self.message_user(request, f"Activated {updated} task(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected tasks")
    def deactivate(self, request, queryset):
        updated = queryset.update(active=False)
        task_cache_clear()
        self.message_user(request, f"Deactivated {updated} task(s); they can no longer be submitted.", messages.SUCCESS)
