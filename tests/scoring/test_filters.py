"""Lambda FilterCriteria pattern matching on stream records."""

import pytest

from scoring.stream.filters import InvalidFilter, matches, matches_any, parse_patterns

SEED = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"PK": {"S": [{"prefix": "SCORE#"}]}}}}


def record(event="INSERT", pk="SCORE#1", **new_image):
    return {"eventName": event, "dynamodb": {"Keys": {"PK": {"S": pk}}, "NewImage": new_image}}


@pytest.mark.parametrize(("rec", "expected"), [
    (record(), True),
    (record(event="MODIFY"), False),
    (record(pk="PLAYER#1"), False),
    (record(pk="CONSUMER"), False),
    ({"eventName": "INSERT", "dynamodb": {}}, False),
])
def test_seed_filter_passes_only_score_inserts(rec, expected):
    assert matches(rec, SEED) is expected


def test_equals_is_any_of_a_list_and_type_strict():
    assert matches({"n": 3}, {"n": [1, 3]})
    assert not matches({"n": "3"}, {"n": [3]})
    assert matches({"v": None}, {"v": [None]})


def test_anything_but_values_and_prefix():
    assert matches({"s": "applied"}, {"s": [{"anything-but": ["pending", "rejected"]}]})
    assert not matches({"s": "pending"}, {"s": [{"anything-but": ["pending"]}]})
    assert matches({"pk": "PLAYER#1"}, {"pk": [{"anything-but": {"prefix": "SCORE#"}}]})
    assert not matches({}, {"s": [{"anything-but": ["x"]}]})


def test_numeric_ranges():
    pattern = {"p": [{"numeric": [">", 0, "<=", 50]}]}
    assert matches({"p": 50}, pattern)
    assert not matches({"p": 0}, pattern)
    assert not matches({"p": 51}, pattern)
    assert not matches({"p": "10"}, pattern)
    assert matches({"p": 7}, {"p": [{"numeric": ["=", 7]}]})


def test_exists_true_and_false():
    assert matches({"a": 1}, {"a": [{"exists": True}]})
    assert not matches({}, {"a": [{"exists": True}]})
    assert matches({}, {"a": [{"exists": False}]})
    assert not matches({"a": 1}, {"a": [{"exists": False}]})


def test_suffix_and_ignore_case():
    assert matches({"t": "big-products"}, {"t": [{"suffix": "-products"}]})
    assert matches({"e": "insert"}, {"e": [{"equals-ignore-case": "INSERT"}]})


def test_array_field_matches_if_any_element_does():
    assert matches({"tags": ["a", "b"]}, {"tags": ["b"]})
    assert not matches({"tags": []}, {"tags": ["b"]})


def test_a_record_passes_if_any_filter_matches():
    patterns = [{"eventName": ["REMOVE"]}, SEED]
    assert matches_any(record(), patterns)
    assert not matches_any(record(event="MODIFY"), patterns)


def test_patterns_parse_from_json_strings_as_in_filter_criteria():
    assert parse_patterns(['{"eventName": ["INSERT"]}']) == [{"eventName": ["INSERT"]}]


@pytest.mark.parametrize("bad", [
    {}, {"eventName": "INSERT"}, {"eventName": []}, {"n": [{"numeric": [">"]}]},
    {"n": [{"between": [1, 2]}]}, {"n": [{"prefix": "a", "suffix": "b"}]},
    # Arguments of the wrong type, which would fail on the first record, not at start-up:
    {"n": [{"prefix": [1]}]}, {"n": [{"suffix": 2}]}, {"n": [{"equals-ignore-case": None}]},
    {"n": [{"exists": "yes"}]}, {"n": [{"numeric": [">", "0"]}]}, {"n": [{"numeric": "> 0"}]},
    {"n": [{"anything-but": {"prefix": 1}}]}, {"n": [{"anything-but": {"numeric": [">", 0]}}]},
])
def test_invalid_patterns_are_refused_with_a_reason(bad):
    with pytest.raises(InvalidFilter):
        parse_patterns([bad])


@pytest.mark.parametrize("good", [
    {"n": [{"prefix": "a"}, {"suffix": "b"}, {"equals-ignore-case": "C"}, {"exists": False}]},
    {"n": [{"numeric": [">", 0, "<=", 5.5]}, {"anything-but": ["x", 1]}, {"anything-but": {"prefix": "y"}}]},
])
def test_every_matcher_parses_and_matches_a_record_without_failing(good):
    [pattern] = parse_patterns([good])
    for value in ("abc", 3, None, ["a", 1], {"k": "v"}):
        assert matches_any({"n": value}, [pattern]) in (True, False)  # an answer, whatever the record holds
