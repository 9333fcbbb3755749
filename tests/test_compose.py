"""docker-compose.yml is a valid Compose file, with no Docker installed.

Compose loads a file in three steps, and so does this test: parse the YAML
(merge keys such as ``<<: *django`` resolve there), interpolate ``${...}``
in every value, then validate the result against the Compose
Specification's JSON schema. The schema is the copy that check-jsonschema
vendors (``--builtin-schema vendor.compose-spec``, from the compose-spec
repository), pinned with the package in constraints.txt.
"""

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


class InterpolationError(ValueError):
    pass


_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_MODIFIER = re.compile(r"(:?)([-?+])(.*)", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables in one value as the Compose Specification's
    "Interpolation" section defines it: ``$$`` is a literal ``$``; ``$VAR``
    and ``${VAR}`` are the value or "" when unset; ``${VAR:-default}`` and
    ``${VAR-default}`` give the default when VAR is unset or empty (``:``) or
    just unset; ``${VAR:?err}`` and ``${VAR?err}`` refuse to go on with
    ``err``; ``${VAR:+alt}`` and ``${VAR+alt}`` give ``alt`` when VAR is set.
    A default or alternative may itself hold ``${...}``. Any other ``$`` is
    an invalid interpolation format, as Compose reports it."""
    out, i = [], 0
    while (start := text.find("$", i)) != -1:
        out.append(text[i:start])
        rest = text[start + 1:]
        if rest.startswith("$"):
            out.append("$")
            i = start + 2
        elif name := _NAME.match(rest):
            out.append(env.get(name[0], ""))
            i = start + 1 + name.end()
        elif rest.startswith("{"):
            end = _closing_brace(text, start)
            out.append(_braced(text[start + 2:end], env, text))
            i = end + 1
        else:
            raise InterpolationError(f"invalid interpolation format for {text!r}")
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes the ``${`` at ``start``, past nested ones."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid interpolation format for {text!r}: unclosed '${{'")


def _braced(expr: str, env: Mapping[str, str], text: str) -> str:
    name = _NAME.match(expr)
    modifier = _MODIFIER.fullmatch(expr[name.end():]) if name else None
    if name is None or (modifier is None and name.end() != len(expr)):
        raise InterpolationError(f"invalid interpolation format for {text!r}")
    value = env.get(name[0])
    if modifier is None:
        return value or ""
    colon, op, arg = modifier.groups()
    is_set = value is not None and (value != "" or not colon)
    if op == "-":
        return value if is_set else interpolate(arg, env)
    if op == "+":
        return interpolate(arg, env) if is_set else ""
    if not is_set:
        raise InterpolationError(f"required variable {name[0]} is missing a value: {arg}")
    return value


def interpolate_values(node, env: Mapping[str, str]):
    """Interpolate every string value of a parsed Compose file (keys are left alone, as Compose does)."""
    if isinstance(node, dict):
        return {key: interpolate_values(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_values(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def compose_config(env: Mapping[str, str], path: Path = ROOT / "docker-compose.yml") -> dict:
    """The file as `docker compose config` resolves it with only ``env`` set
    (so neither a developer's shell nor their .env can change the result)."""
    return interpolate_values(yaml.safe_load(path.read_text()), env)


def schema_errors(config: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema's verdict on ``config`` under the Compose Specification schema."""
    resolved = tmp_path / "compose.resolved.json"
    resolved.write_text(json.dumps(config))
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(resolved)], capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_with_every_service_healthchecked(tmp_path):
    config = compose_config({"SECRET_KEY": "compose-config-check-only"})
    result = schema_errors(config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    services = config["services"]
    assert set(services) == {"web", "consumer", "redis", "dynamodb", "postgres", "init"}
    for name in ("web", "consumer", "redis", "dynamodb", "postgres"):
        assert "healthcheck" in services[name], name
    assert services["web"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["consumer"]["command"].startswith("python manage.py consume_scores")
    assert services["web"]["environment"]["SECRET_KEY"] == "compose-config-check-only"
    assert services["web"]["environment"]["ALLOWED_HOSTS"] == "localhost,127.0.0.1"


@pytest.mark.parametrize("env", [{}, {"SECRET_KEY": ""}], ids=["unset", "empty"])
def test_compose_refuses_to_start_without_a_secret_key(env):
    with pytest.raises(InterpolationError, match="required variable SECRET_KEY is missing a value: set SECRET_KEY"):
        compose_config(env)


def test_schema_check_rejects_what_compose_would(tmp_path):
    config = compose_config({"SECRET_KEY": "x"})
    config["services"]["web"]["depends_on"]["init"]["condition"] = "service_completed"
    config["services"]["consumer"]["stop_grace"] = "30s"
    result = schema_errors(config, tmp_path)
    assert result.returncode != 0
    assert "'service_completed' is not one of" in result.stdout, result.stdout
    assert "'stop_grace' was unexpected" in result.stdout, result.stdout


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("${A}", {"A": "1"}, "1"),
    ("${A}/$A/x", {}, "//x"),
    ("${A:-d}", {}, "d"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A:-d}", {"A": "v"}, "v"),
    ("${A:+alt}", {"A": "v"}, "alt"),
    ("${A:+alt}", {"A": ""}, ""),
    ("${A+alt}", {"A": ""}, "alt"),
    ("${A?err}", {"A": ""}, ""),
    ("${A:-${B:-inner}}!", {}, "inner!"),
    ("cost: $$5 ${A:-a,b}", {}, "cost: $5 a,b"),
    ("no variables", {}, "no variables"),
])
def test_interpolation_follows_the_compose_specification(text, env, expected):
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(("text", "env", "message"), [
    ("${A:?say why}", {"A": ""}, "required variable A is missing a value: say why"),
    ("${A?say why}", {}, "required variable A is missing a value: say why"),
    ("${A:0:2}", {"A": "abc"}, "invalid interpolation format"),
    ("${1A}", {}, "invalid interpolation format"),
    ("$ 5", {}, "invalid interpolation format"),
    ("${A:-x", {}, "unclosed"),
])
def test_interpolation_refuses_what_compose_refuses(text, env, message):
    with pytest.raises(InterpolationError, match=re.escape(message)):
        interpolate(text, env)
