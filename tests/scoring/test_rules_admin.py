"""Rules changes in Django admin: a change of points, or of a task's
difficulty, asks how and why, and is made through scoring.rules; a
retroactive one only after its preview."""

import pytest

from scoring import store
from scoring.admin import DifficultyAdmin
from scoring.domain import adjustment_id
from scoring.models import Difficulty, RulesChange, Task
from tests.scoring.test_rules import play, process

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]


def difficulty_form(difficulty: Difficulty, **changes) -> dict:
    data = {"name": difficulty.name, "points": difficulty.points, "ordering": difficulty.ordering,
            "question_count": difficulty.question_count, "min_seconds": difficulty.min_seconds,
            "review_seconds": difficulty.review_seconds or "", "rules_mode": "", "rules_reason": ""}
    return {**data, **changes}


def test_new_points_without_a_mode_are_refused(admin_client):
    hard = Difficulty.objects.get(name="Hard")
    response = admin_client.post(f"/admin/scoring/difficulty/{hard.pk}/change/", difficulty_form(hard, points=60))
    assert response.status_code == 200
    assert "choose forward or retroactive" in response.content.decode()
    assert Difficulty.objects.get(name="Hard").points == 50
    assert RulesChange.objects.count() == 0


def test_a_forward_change_in_admin_is_recorded_with_who_and_why(admin_client, admin_user):
    hard = Difficulty.objects.get(name="Hard")
    response = admin_client.post(f"/admin/scoring/difficulty/{hard.pk}/change/",
                                 difficulty_form(hard, points=60, ordering=7, rules_mode="forward",
                                                 rules_reason="next season"))
    assert response.status_code == 302
    hard.refresh_from_db()
    assert (hard.points, hard.ordering) == (60, 7)
    change = RulesChange.objects.get()
    assert (change.mode, change.created_by, change.reason, change.summary) == (
        "forward", admin_user.username, "next season", "Hard 50 → 60 from now on")


def test_a_retroactive_change_is_previewed_then_applied(admin_client):
    process([play(1, 0, "big-products"), play(1, 1, "warm-up-sums"), play(2, 0, "mental-marathon")])
    hard = Difficulty.objects.get(name="Hard")
    response = admin_client.post(f"/admin/scoring/difficulty/{hard.pk}/change/",
                                 difficulty_form(hard, points=60, rules_mode="retroactive", rules_reason="why"))
    assert response.status_code == 302 and "/rescore/" in response["Location"]
    assert Difficulty.objects.get(name="Hard").points == 50  # nothing yet: a preview first
    assert RulesChange.objects.count() == 0
    preview = admin_client.get(response["Location"])
    assert preview.status_code == 200
    assert preview.context["preview"].points_delta == 20
    assert preview.context["preview"].players_affected == 2
    before = preview.context["before"]
    applied = admin_client.post(response["Location"], {"value": "60", "reason": "why", "before": before})
    assert applied.status_code == 302
    change = RulesChange.objects.get()
    assert (change.mode, change.status, change.adjustments_written, change.points_delta) == (
        "retroactive", "applied", 2, 20)
    assert Difficulty.objects.get(name="Hard").points == 60
    written = store.scores_get_many(submission_ids=[adjustment_id(rules_change=change.pk, player_id=p)
                                                    for p in ("p1", "p2")])
    assert {a.reason for a in written.values()} == {"why"}
    # Applying it again from the preview page finds nothing to change.
    again = admin_client.post(response["Location"], {"value": "60", "reason": "why", "before": before})
    assert again.status_code == 302 and RulesChange.objects.count() == 1


def test_moving_a_task_in_admin_is_a_rules_change(admin_client):
    task = Task.objects.get(slug="division-drill")
    easy = Difficulty.objects.get(name="Easy")
    data = {"title": task.title, "slug": task.slug, "description": task.description, "difficulty": easy.pk,
            "active": "on", "ops": task.ops, "ranges": "{}", "rules_mode": "forward", "rules_reason": "too hard"}
    response = admin_client.post(f"/admin/scoring/task/{task.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    change = RulesChange.objects.get()
    assert (change.task, change.rescore, change.after["difficulty"]) == (task, {"division-drill": 10}, "Easy")


def test_the_rules_history_is_read_only(admin_client):
    process([play(1, 0, "big-products")])
    hard = Difficulty.objects.get(name="Hard")
    hard.points = 55
    hard.save()
    change = RulesChange.objects.get()
    assert admin_client.get("/admin/scoring/ruleschange/").status_code == 200
    assert admin_client.get(f"/admin/scoring/ruleschange/{change.pk}/change/").status_code == 200  # a view
    assert admin_client.post(f"/admin/scoring/ruleschange/{change.pk}/change/", {"reason": "x"}).status_code == 403
    assert admin_client.get(f"/admin/scoring/ruleschange/{change.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/scoring/ruleschange/add/").status_code == 403
    assert "points" not in DifficultyAdmin.list_editable


def test_apply_refuses_when_the_rule_changed_since_the_preview(admin_client):
    hard = Difficulty.objects.get(name="Hard")
    url = f"/admin/scoring/difficulty/{hard.pk}/rescore/?value=60&reason=r"
    before = admin_client.get(url).context["before"]
    hard.points = 70  # someone else, meanwhile
    hard.save()
    response = admin_client.post(url, {"value": "60", "reason": "r", "before": before})
    assert response.status_code == 302 and "/rescore/" in response["Location"]
    assert Difficulty.objects.get(name="Hard").points == 70
    assert list(RulesChange.objects.values_list("mode", flat=True)) == ["forward"]  # only the other one


def test_the_changelist_still_edits_ordering_inline(admin_client):
    hard = Difficulty.objects.get(name="Hard")
    rows = list(Difficulty.objects.order_by("ordering", "points"))
    data = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": str(len(rows)), "_save": "Save"}
    for i, d in enumerate(rows):
        data[f"form-{i}-id"] = str(d.pk)
        data[f"form-{i}-ordering"] = str(9 if d.pk == hard.pk else d.ordering)
    response = admin_client.post("/admin/scoring/difficulty/", data)
    assert response.status_code == 302
    assert Difficulty.objects.get(pk=hard.pk).ordering == 9
    assert RulesChange.objects.count() == 0


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"question_count": 0}, "question_count", "greater than or equal to 1"),
    ({"question_count": 101}, "question_count", "less than or equal to 100"),
    ({"min_seconds": -5}, "min_seconds", "greater than or equal to 0"),
    ({"min_seconds": 900, "review_seconds": ""}, "min_seconds", "none could be completed"),
])
def test_admin_refuses_a_difficulty_no_challenge_could_be_played_at(admin_client, changes, field, says):
    easy = Difficulty.objects.get(name="Easy")
    response = admin_client.post(f"/admin/scoring/difficulty/{easy.pk}/change/", difficulty_form(easy, **changes))
    assert response.status_code == 200
    assert says in " ".join(response.context["adminform"].form.errors[field])
    assert getattr(Difficulty.objects.get(name="Easy"), field) == getattr(easy, field)


@pytest.mark.parametrize(("model", "value", "says"), [
    ("difficulty", "abc", "Cannot preview this change: the new value must be a whole number, not 'abc'."),
    ("task", "999999", "Cannot preview this change: there is no difficulty with id 999999."),
])
def test_a_preview_of_a_value_that_is_not_one_says_so_plainly(admin_client, model, value, says):
    obj = Difficulty.objects.get(name="Hard") if model == "difficulty" else Task.objects.get(slug="big-products")
    response = admin_client.get(f"/admin/scoring/{model}/{obj.pk}/rescore/", {"value": value, "reason": "x"},
                                follow=True)
    assert response.status_code == 200
    assert says in [str(m) for m in response.context["messages"]]
