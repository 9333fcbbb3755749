"""Each task's challenges ask what its card promises, editable in admin."""

import pytest
from django.core.exceptions import ValidationError

from scoring.challenges import questions_generate
from scoring.models import Difficulty, Task

pytestmark = pytest.mark.django_db


def questions_of(slug: str, seeds=range(40)):
    count, spec = Task.objects.select_related("difficulty").get(slug=slug).question_spec()
    return [q for seed in seeds for q in questions_generate(seed=seed, spec=spec, count=count)], count


@pytest.mark.parametrize(
    ("slug", "ops"),
    [("warm-up-sums", {"+"}), ("quick-subtraction", {"-"}), ("times-tables", {"*"}),
     ("mixed-operations", {"+", "-", "*"}), ("long-addition", {"+"}), ("division-drill", {"/"}),
     ("mental-marathon", {"+", "-", "*", "/"}), ("big-products", {"*"})],
)
def test_a_seeded_task_asks_only_its_own_operations(slug, ops):
    questions, _ = questions_of(slug)
    assert {q.op for q in questions} == ops


def test_the_seeded_ranges_match_the_cards():
    tables, _ = questions_of("times-tables")
    assert all(q.a <= 10 and q.b <= 10 for q in tables)  # "Multiply numbers up to 10."
    long_sums, _ = questions_of("long-addition")
    assert all(100 <= q.a <= 999 and 100 <= q.b <= 999 for q in long_sums)  # "Add three-digit numbers."
    products, _ = questions_of("big-products")
    assert all(q.a >= 11 and q.b >= 11 for q in products)  # "two-digit by two-digit"


def test_the_difficulty_sets_the_number_of_questions_and_the_floor():
    counts = {d.name: (d.question_count, d.min_seconds) for d in Difficulty.objects.all()}
    assert counts == {"Easy": (3, 3.0), "Medium": (5, 6.0), "Hard": (8, 16.0)}
    assert questions_of("big-products")[1] == 8


def test_an_admin_edit_changes_the_questions():
    task = Task.objects.get(slug="warm-up-sums")
    task.ops, task.ranges = "-", {"add": [50, 60]}
    task.full_clean()
    task.save()
    questions, _ = questions_of("warm-up-sums")
    assert {q.op for q in questions} == {"-"} and all(50 <= q.a <= 60 for q in questions)


@pytest.mark.parametrize(
    ("ops", "ranges", "field"),
    [("%", {}, "ops"), ("++", {}, "ops"), ("+", {"add": [9, 1]}, "ranges"), ("+", {"modulo": [1, 2]}, "ranges"),
     ("+", {"add": "1-9"}, "ranges"), ("+", {"add": [1]}, "ranges"), ("+", ["add"], "ranges")],
)
def test_an_admin_cannot_save_questions_the_generator_cannot_ask(ops, ranges, field):
    task = Task.objects.get(slug="warm-up-sums")
    task.ops, task.ranges = ops, ranges
    with pytest.raises(ValidationError) as raised:
        task.full_clean()
    assert field in raised.value.message_dict
