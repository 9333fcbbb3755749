"""AWS Lambda event filtering (FilterCriteria) for stream records.

The same pattern syntax as an event source mapping's FilterCriteria, so a
filter written for the Lambda deployment works unchanged in
``consume_scores``. A record passes if it matches any one pattern. Within a
pattern every key must match (AND); a list of matchers for one key is an OR.

Matchers, as AWS documents them for Lambda event filtering:

======================  ==========================================
``["x", 1, null]``      equals (any of)
``{"prefix": "x"}``     begins with
``{"suffix": "x"}``     ends with
``{"equals-ignore-case": "x"}``
``{"anything-but": [..]}``  not equal to any (or ``{"anything-but": {"prefix": "x"}}``)
``{"numeric": [">", 0, "<=", 5]}``  range; also ``["=", 3]``
``{"exists": true}``    the field is present (``false``: absent)
======================  ==========================================
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

_MISSING = object()
_NUMERIC_OPS = {
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class InvalidFilter(ValueError):
    """A filter pattern that Lambda would also refuse."""


def parse_patterns(raw: Iterable[Mapping | str]) -> list[dict]:
    """Patterns from settings: dicts, or JSON strings as in FilterCriteria."""
    patterns = []
    for item in raw:
        pattern = json.loads(item) if isinstance(item, str) else item
        if not isinstance(pattern, Mapping) or not pattern:
            raise InvalidFilter(f"A filter pattern must be a non-empty JSON object, got {item!r}")
        _validate(pattern, path="")
        patterns.append(dict(pattern))
    return patterns


def matches_any(record: Mapping, patterns: list[dict]) -> bool:
    """True if the record matches at least one pattern (or there are none)."""
    return not patterns or any(matches(record, pattern) for pattern in patterns)


def matches(value: Any, pattern: Mapping) -> bool:
    for key, rule in pattern.items():
        field = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if field is _MISSING or not matches(field, rule):
                return False
        elif not _field_matches(field, rule):
            return False
    return True


def _field_matches(field: Any, rules: list) -> bool:
    if field is not _MISSING and isinstance(field, list):
        # An array field matches if any element does, as in AWS.
        return any(_field_matches(element, rules) for element in field) if field else False
    return any(_rule_matches(field, rule) for rule in rules)


def _rule_matches(field: Any, rule: Any) -> bool:
    if not isinstance(rule, Mapping):
        return field is not _MISSING and field == rule and type(field) is type(rule)
    (op, arg), = rule.items()
    if op == "exists":
        return (field is not _MISSING) == arg
    if field is _MISSING:
        return False
    if op == "prefix":
        return isinstance(field, str) and field.startswith(arg)
    if op == "suffix":
        return isinstance(field, str) and field.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(field, str) and field.lower() == arg.lower()
    if op == "anything-but":
        if isinstance(arg, Mapping):
            return not _rule_matches(field, arg)
        excluded = arg if isinstance(arg, list) else [arg]
        return field not in excluded
    if op == "numeric":
        if isinstance(field, bool) or not isinstance(field, (int, float)):
            return False
        return all(_NUMERIC_OPS[arg[i]](field, arg[i + 1]) for i in range(0, len(arg), 2))
    raise InvalidFilter(f"Unknown filter operator {op!r}")


def _validate(pattern: Mapping, path: str) -> None:
    for key, rule in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(rule, Mapping):
            _validate(rule, where)
            continue
        if not isinstance(rule, list) or not rule:
            raise InvalidFilter(f"Filter field {where!r} must be an object or a non-empty list of matchers")
        for matcher in rule:
            if isinstance(matcher, Mapping):
                if len(matcher) != 1:
                    raise InvalidFilter(f"Matcher {matcher!r} at {where!r} must have exactly one operator")
                (op, arg), = matcher.items()
                _validate_matcher(op, arg, where)


def _validate_matcher(op: str, arg: Any, where: str) -> None:
    """The operator's argument has the type AWS requires, so that matching
    a record never fails on it."""
    if op == "numeric":
        if (not isinstance(arg, list) or not arg or len(arg) % 2
                or any(arg[i] not in _NUMERIC_OPS for i in range(0, len(arg), 2))
                or any(isinstance(arg[i], bool) or not isinstance(arg[i], (int, float))
                       for i in range(1, len(arg), 2))):
            raise InvalidFilter(f"Bad numeric matcher {arg!r} at {where!r}: operators and numbers, "
                                'as in [">", 0, "<=", 5]')
    elif op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise InvalidFilter(f"Matcher {op!r} at {where!r} takes a string, not {arg!r}")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise InvalidFilter(f"Matcher 'exists' at {where!r} takes true or false, not {arg!r}")
    elif op == "anything-but":
        if isinstance(arg, Mapping):
            if len(arg) != 1:
                raise InvalidFilter(f"Matcher 'anything-but' at {where!r} takes one operator, not {arg!r}")
            (inner, inner_arg), = arg.items()
            if inner not in ("prefix", "suffix", "equals-ignore-case"):
                raise InvalidFilter(f"Matcher 'anything-but' at {where!r} cannot take {inner!r}")
            _validate_matcher(inner, inner_arg, where)
    else:
        raise InvalidFilter(f"Unknown filter operator {op!r} at {where!r}")
