import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from scoring import rules, store
from scoring.models import Difficulty, RulesChange, Task
from scoring.selectors import task_cache_clear

Mode = RulesChange.Mode


class RulesChangeForm(forms.ModelForm):
    """A change form whose ``rules_field`` is a scoring rule: changing it
    asks how (forward or retroactive) and why, and the admin then makes the
    change through ``scoring.rules``, never as a plain save."""

    rules_field = ""
    rules_mode = forms.ChoiceField(
        label="If the points change", required=False, widget=forms.RadioSelect,
        choices=[(Mode.FORWARD, "Forward: submissions processed from now on get the new points"),
                 (Mode.RETROACTIVE, "Retroactive: re-score every applied submission (you see a preview first)")])
    rules_reason = forms.CharField(label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                   help_text="Shown to players beside their adjustment.")

    def clean(self):
        data = super().clean()
        if self.instance.pk and self.rules_field in self.changed_data and not data.get("rules_mode"):
            self.add_error("rules_mode", "This changes the scoring rules: choose forward or retroactive.")
        return data


class DifficultyForm(RulesChangeForm):
    rules_field = "points"

    class Meta:
        model = Difficulty
        fields = "__all__"


class TaskForm(RulesChangeForm):
    rules_field = "difficulty"

    class Meta:
        model = Task
        fields = "__all__"


class RulesChangeAdminMixin:
    """Saves a rules change as its mode says: forward at once, through
    ``rules.rules_change_apply``; retroactive only after a preview page
    (``<id>/rescore/``), on which staff apply it. The rest of the form is
    saved either way."""

    rules_fieldsets_title = "Rules change"

    def plan_for(self, obj, value) -> rules.Plan:
        raise NotImplementedError

    def rules_value(self, source) -> int:
        """The new value (points, or a difficulty's id) from the preview
        page's query string or form; RulesChangeInvalid if it is not a number."""
        value = source.get("value", "")
        try:
            return int(value)
        except ValueError:
            raise rules.RulesChangeInvalid(f"the new value must be a whole number, not {value!r}.") from None

    def rules_old(self, form):
        """The rule's value before this form changed it."""
        raise NotImplementedError

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return [(name, {**opts, "fields": [f for f in opts["fields"] if not f.startswith("rules_")]})
                    for name, opts in fieldsets]
        fields = [f for f in fieldsets[0][1]["fields"] if not f.startswith("rules_")]
        return [(None, {"fields": fields}), (self.rules_fieldsets_title, {
            "fields": ["rules_mode", "rules_reason"],
            "description": f"Changing {self.form.rules_field} changes the scoring rules: every change is "
                           "recorded as a rules change, with its mode and reason."})]

    def save_model(self, request, obj, form, change):
        field = getattr(form, "rules_field", None)  # None: the changelist's inline form (no rule in it)
        request._rules_redirect = None
        if not (field and change and field in form.changed_data):
            super().save_model(request, obj, form, change)
            return
        new = getattr(obj, field)
        setattr(obj, field, self.rules_old(form))
        super().save_model(request, obj, form, change)  # everything else
        mode, reason = form.cleaned_data["rules_mode"], form.cleaned_data["rules_reason"]
        if mode == Mode.RETROACTIVE:
            value = new if field == "points" else new.pk
            request._rules_redirect = (reverse(f"admin:scoring_{obj._meta.model_name}_rescore", args=[obj.pk])
                                       + "?" + urlencode({"value": value, "reason": reason}))
            return
        try:
            applied = rules.rules_change_apply(plan=self.plan_for(obj, new), mode=Mode.FORWARD, reason=reason,
                                               actor=request.user.get_username())
        except rules.RulesChangeInvalid as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Rules change #{applied.pk}: {applied.summary}.", messages.SUCCESS)

    def response_change(self, request, obj):
        redirect = getattr(request, "_rules_redirect", None)
        if redirect:
            return HttpResponseRedirect(redirect)
        return super().response_change(request, obj)

    def get_urls(self):
        name = f"scoring_{self.model._meta.model_name}_rescore"
        return [path("<int:object_id>/rescore/", self.admin_site.admin_view(self.rescore_view), name=name),
                *super().get_urls()]

    def rescore_view(self, request, object_id: int):
        """Preview a retroactive change (GET), then apply it (POST)."""
        obj = get_object_or_404(self.model, pk=object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        reason = source.get("reason", "")
        try:
            plan = self.plan_for(obj, self.rules_value(source))
        except rules.RulesChangeInvalid as exc:
            self.message_user(request, f"Cannot preview this change: {exc}", messages.ERROR)
            return HttpResponseRedirect(reverse(f"admin:scoring_{obj._meta.model_name}_change", args=[obj.pk]))
        if request.method == "POST" and request.POST.get("before") != json.dumps(plan.before, sort_keys=True):
            self.message_user(request, "The rule changed since this preview: check the new preview before applying.",
                              messages.WARNING)
            return HttpResponseRedirect(f"{request.path}?{urlencode({'value': source.get('value'), 'reason': reason})}")
        if request.method == "POST":
            try:
                change = rules.rules_change_apply(plan=plan, mode=Mode.RETROACTIVE, reason=reason,
                                                  actor=request.user.get_username())
            except rules.RulesChangeInvalid as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
            except store.StoreError as exc:
                self.message_user(request, f"The new rule is in place, but DynamoDB is unavailable ({exc}), so "
                                  "not every adjustment was written. When it is back, select the change under Rules "
                                  "changes and run \"Write missing adjustments\".", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:scoring_ruleschange_changelist"))
            self.message_user(request, f"Rules change #{change.pk} applied: {change.summary}. "
                              f"{change.adjustments_written} adjustment(s) written; the stream applies them "
                              "within seconds.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:scoring_ruleschange_change", args=[change.pk]))
        try:
            preview = rules.rules_preview(plan=plan)
        except store.StoreError as exc:
            self.message_user(request, f"DynamoDB is unavailable: {exc}", messages.ERROR)
            return HttpResponseRedirect(reverse(f"admin:scoring_{obj._meta.model_name}_change", args=[obj.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": obj,
                   "title": f"Preview: {plan.summary_for(Mode.RETROACTIVE)}", "plan": plan, "preview": preview,
                   "reason": reason, "value": source.get("value"), "before": json.dumps(plan.before, sort_keys=True)}
        return TemplateResponse(request, "admin/scoring/rescore_preview.html", context)


@admin.register(Difficulty)
class DifficultyAdmin(RulesChangeAdminMixin, admin.ModelAdmin):
    form = DifficultyForm
    list_display = ["name", "points", "ordering", "question_count", "min_seconds", "review_seconds",
                    "task_count"]
    # Not points: changing them is a rules change, which asks for a mode
    # and a reason on the change form.
    list_editable = ["ordering"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_task_count=Count("tasks"))

    @admin.display(description="tasks", ordering="_task_count")
    def task_count(self, obj: Difficulty) -> int:
        return obj._task_count

    def plan_for(self, obj, value) -> rules.Plan:
        return rules.plan_points(difficulty_name=obj.name, points=value)

    def rules_old(self, form):
        return form.initial["points"]


@admin.register(Task)
class TaskAdmin(RulesChangeAdminMixin, admin.ModelAdmin):
    form = TaskForm
    list_display = ["title", "slug", "difficulty", "points", "ops", "active"]
    list_filter = ["active", "difficulty"]
    search_fields = ["slug", "title", "description"]
    list_select_related = ["difficulty"]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["activate", "deactivate"]

    @admin.display(description="points", ordering="difficulty__points")
    def points(self, obj: Task) -> int:
        return obj.difficulty.points

    def plan_for(self, obj, value) -> rules.Plan:
        target = value if isinstance(value, Difficulty) else Difficulty.objects.filter(pk=value).first()
        if target is None:
            raise rules.RulesChangeInvalid(f"there is no difficulty with id {value}.")
        return rules.plan_move(task_slug=obj.slug, difficulty_name=target.name)

    def rules_old(self, form):
        return Difficulty.objects.get(pk=form.initial["difficulty"])

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


@admin.register(RulesChange)
class RulesChangeAdmin(admin.ModelAdmin):
    """The rules history: append-only, so staff may read it, never edit it."""

    list_display = ["id", "summary", "mode", "status", "created_by", "created_at", "players_affected",
                    "points_delta", "adjustments_written"]
    list_filter = ["mode", "status"]
    search_fields = ["summary", "reason", "created_by"]
    actions = ["write_missing_adjustments"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Write missing adjustments (after a crash; writes only what is missing)",
                  permissions=["view"])
    def write_missing_adjustments(self, request, queryset):
        if not request.user.has_perm("scoring.change_difficulty"):
            raise PermissionDenied
        written = 0
        for change in queryset.filter(mode=Mode.RETROACTIVE):
            written += rules.rules_change_adjust(change=change)
        self.message_user(request, f"Wrote {written} missing adjustment(s).", messages.SUCCESS)
