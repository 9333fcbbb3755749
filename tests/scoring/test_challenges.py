"""The server's challenge questions: pure, seeded, and within their spec."""

import pytest

from scoring.challenges import LEVELS, OPS, Question, QuestionSpec, answers_check, level_for, questions_generate


def test_the_same_seed_gives_the_same_questions_and_another_seed_others():
    spec = level_for(3)
    first = questions_generate(seed=1234, spec=spec, count=8)
    assert questions_generate(seed=1234, spec=spec, count=8) == first
    assert questions_generate(seed=1235, spec=spec, count=8) != first
    assert len(first) == 8


@pytest.mark.parametrize("ordering", [1, 2, 3])
def test_every_question_stays_within_its_level_and_has_a_whole_non_negative_answer(ordering):
    spec = LEVELS[ordering]
    seen_ops = set()
    for seed in range(300):
        for q in questions_generate(seed=seed, spec=spec, count=5):
            seen_ops.add(q.op)
            assert q.answer >= 0
            if q.op in "+-":
                assert spec.add[0] <= min(q.a, q.b) and max(q.a, q.b) <= spec.add[1]
                assert q.a >= q.b or q.op == "+"
            elif q.op == "*":
                assert spec.factor[0] <= q.a <= spec.factor[1] and spec.factor2[0] <= q.b <= spec.factor2[1]
            else:
                assert q.a % q.b == 0, "division must be exact"
                assert spec.divisor[0] <= q.b <= spec.divisor[1]
                assert spec.quotient[0] <= q.answer <= spec.quotient[1]
    assert seen_ops == set(OPS)


def test_a_task_that_asks_only_division_gets_only_division():
    spec = QuestionSpec(ops=("/",), divisor=(2, 12), quotient=(2, 12))
    questions = questions_generate(seed=7, spec=spec, count=50)
    assert {q.op for q in questions} == {"/"}


def test_what_a_client_sees_has_no_answer():
    shown = Question(a=12, op="*", b=7).as_dict()
    assert shown == {"a": 12, "op": "*", "b": 7, "text": "12 \u00d7 7"}


def test_answers_check_names_the_wrong_ones_and_all_of_them_for_a_wrong_count():
    questions = [Question(a=2, op="+", b=3), Question(a=9, op="-", b=4), Question(a=12, op="/", b=4)]
    assert answers_check(questions=questions, answers=[5, 5, 3]) == []
    assert answers_check(questions=questions, answers=[5, 6, 4]) == [1, 2]
    assert answers_check(questions=questions, answers=[5, 5]) == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs",
    [{"ops": ()}, {"ops": ("%",)}, {"add": (9, 1)}, {"divisor": (0, 5)}, {"factor": (-1, 3)}, {"add": (1.5, 3)},
     {"add": (True, 3)}],
)
def test_a_spec_outside_what_the_generator_can_ask_is_refused(kwargs):
    with pytest.raises(ValueError):
        QuestionSpec(**kwargs)


def test_levels_clamp_like_the_play_page():
    assert level_for(None) == level_for(0) == LEVELS[1]
    assert level_for(7) == LEVELS[3]
