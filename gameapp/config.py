"""Read configuration from the environment, failing loudly on bad values.

django-environ does the parsing; this module adds strictness, because
django-environ reads ``DEBUG=maybe`` as False and an unknown database scheme
as a KeyError. Every error here names the setting that is wrong.
"""

import json
import os
import re
from collections.abc import Callable
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_RATE = re.compile(r"^[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)$")  # 0/minute would refuse everyone


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Setting {name}={value!r} is invalid: expected {expected}.")


def get_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Setting {name} is required but not set.")
    return value


def get_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise _bad(name, raw, "one of 1/0, true/false, yes/no, on/off")


def get_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, raw, "an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise _bad(name, raw, f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else ""))
    return value


def get_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad(name, raw, "a number") from None
    if value < minimum:
        raise _bad(name, raw, f"a number >= {minimum}")
    return value


def get_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def get_url(name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
    """An URL with one of ``schemes``; unset or empty gives ``default``."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise _bad(name, raw, "a URL starting with " + " or ".join(f"{s}://" for s in schemes))
    return raw


_DB_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")


def get_database(name: str, default: str) -> dict:
    raw = os.environ.get(name) or default
    if urlparse(raw).scheme not in _DB_SCHEMES:
        raise _bad(name, raw, "a database URL such as sqlite:///db.sqlite3 or postgres://user@host/db")
    try:
        return env.db_url_config(raw)
    except (KeyError, ValueError, ImproperlyConfigured) as exc:
        raise _bad(name, raw, f"a database URL such as sqlite:///db.sqlite3 or postgres://... ({exc})") from None


def get_region(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not _REGION.match(value):
        raise _bad(name, value, "an AWS region such as us-east-1")
    return value


def get_table_name(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not _TABLE.match(value):
        raise _bad(name, value, "3-255 characters of letters, digits, '_', '-' or '.'")
    return value


def get_rate(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not _RATE.match(value):
        raise _bad(name, value, "a rate of at least 1, such as 30/minute")
    return value


def get_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(choices))
    return value


def get_json_list(name: str, default: list, *, validate: Callable[[list], object] | None = None,
                  expected: str = "a JSON list") -> list:
    """A JSON list; ``validate``, if given, is called on it and may raise
    ValueError saying what is wrong with it (as ``expected``)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise _bad(name, raw, f"a JSON list ({exc})") from None
    if not isinstance(value, list):
        raise _bad(name, raw, "a JSON list")
    if validate is not None:
        try:
            validate(value)
        except ValueError as exc:
            raise _bad(name, raw, f"{expected} ({exc})") from None
    return value
