"""Start-up refuses a bad setting with a message that names it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python(*args, unset: tuple[str, ...] = (), **env):
    """A fresh Python process in the project, on the base settings plus
    ``env``, without the variables named in ``unset``."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", *unset}}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "gameapp.settings.base", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def manage(*args, **env):
    return python("manage.py", *args, **env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "nosuchdb://x/y"),
        ("DYNAMODB_ENDPOINT_URL", "localhost:8001"),
        ("DYNAMODB_TABLE", "a"),
        ("AWS_REGION", "mars"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("SCORE_SUBMIT_RATE", "lots"),
        ("DYNAMODB_MAX_ATTEMPTS", "0"),
        ("LOG_LEVEL", "verbose"),
        ("SCORE_HOLD_RULES", "sometimes"),
        ("SCORE_HOLD_BURST_COUNT", "0"),
        ("CHALLENGE_TTL_SECONDS", "0"),
        ("CHALLENGE_RATE", "often"),
        ("STREAM_BATCH_SIZE", "10001"),
        ("TOTALS_SCAN_SEGMENTS", "65"),
        ("SCORE_SUBMIT_RATE", "0/minute"),
        ("STREAM_POLL_INTERVAL", "0"),
        ("STREAM_FILTERS", '[{"eventName": [{"prefixx": "INS"}]}]'),
        ("STREAM_FILTERS", "[[]]"),
    ],
)
def test_invalid_setting_fails_startup_naming_it(name, value):
    result = manage("check", **{name: value})
    assert result.returncode != 0
    assert f"Configuration error: Setting {name}=" in result.stderr
    assert "Traceback" not in result.stderr


def test_valid_environment_passes_check():
    result = manage("check", DEBUG="1", AWS_REGION="eu-west-1", DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 0, result.stderr


def test_the_hold_rules_and_key_fallbacks_come_from_the_environment():
    script = ("from django.conf import settings; from scoring.catalog import hold_rules; "
              "print(settings.SECRET_KEY_FALLBACKS, hold_rules())")
    off = manage("shell", "-c", script, SCORE_HOLD_RULES="off", SECRET_KEY_FALLBACKS="old-1, old-2",
                 DATABASE_URL="sqlite:///:memory:")
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip().splitlines()[-1] == "['old-1', 'old-2'] None"


def test_production_refuses_the_default_secret_key():
    result = manage("check", DJANGO_SETTINGS_MODULE="gameapp.settings.production", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_a_weak_old_key_too():
    result = manage("check", DJANGO_SETTINGS_MODULE="gameapp.settings.production",
                    SECRET_KEY="a-real-secret-for-the-deploy-check-0123456789-abcdefghijklmnop",
                    SECRET_KEY_FALLBACKS="django-insecure-local-only-key")
    assert result.returncode != 0
    assert "SECRET_KEY_FALLBACKS" in result.stderr and "Traceback" not in result.stderr


def test_the_local_settings_refuse_to_serve_other_hosts_with_their_public_key():
    """wsgi.py, asgi.py and manage.py fall back to the local settings: a
    deploy that forgot DJANGO_SETTINGS_MODULE must not run with DEBUG on and
    a key anyone can read."""
    refused = manage("check", DJANGO_SETTINGS_MODULE="gameapp.settings.local", ALLOWED_HOSTS="scores.example.com",
                     SECRET_KEY="")
    assert refused.returncode != 0
    assert "DJANGO_SETTINGS_MODULE=gameapp.settings.production" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert manage("check", DJANGO_SETTINGS_MODULE="gameapp.settings.local", ALLOWED_HOSTS="127.0.0.1,localhost",
                  SECRET_KEY="").returncode == 0
    own_key = "a-key-of-my-own-for-my-phone-on-the-lan-0123456789"
    debug = "from django.conf import settings; print(settings.DEBUG)"
    # A real key, DEBUG left to its default: a deploy that forgot the settings module runs without DEBUG.
    local = {"DJANGO_SETTINGS_MODULE": "gameapp.settings.local", "DJANGO_READ_DOT_ENV_FILE": "0"}
    forgot = python("manage.py", "shell", "-c", debug, unset=("DEBUG",), **local, ALLOWED_HOSTS="scores.example.com",
                    SECRET_KEY=own_key)
    assert forgot.returncode == 0 and forgot.stdout.split()[-1] == "False", forgot.stderr
    here = python("manage.py", "shell", "-c", debug, unset=("DEBUG",), **local, ALLOWED_HOSTS="127.0.0.1,localhost")
    assert here.returncode == 0 and here.stdout.split()[-1] == "True", here.stderr
    # A development server for a phone on the network, saying so.
    assert manage("check", DJANGO_SETTINGS_MODULE="gameapp.settings.local", ALLOWED_HOSTS="192.168.1.20",
                  SECRET_KEY=own_key, DEBUG="1").returncode == 0


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    DJANGO_SETTINGS_MODULE="gameapp.settings.production",
                    SECRET_KEY="a-real-secret-for-the-deploy-check-0123456789-abcdefghijklmnop",
                    ALLOWED_HOSTS="scores.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_json_log_format_writes_one_json_object_a_line():
    import json

    result = manage("shell", "-c", "import logging; logging.getLogger('scoring.demo').warning('hello %s', 'there')",
                    LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "scoring.demo" in line)
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "scoring.demo", "hello there")


CONN_MAX_AGE_OF = ("import {module}; from django.db import connection; "
                   "print(connection.settings_dict['CONN_MAX_AGE'])")


@pytest.mark.parametrize(("entry_point", "expected"), [("gameapp.asgi", "0"), ("gameapp.wsgi", "60")])
def test_daphne_never_keeps_database_connections_and_gunicorn_does(entry_point, expected):
    # Django's docs: persistent connections should be off under ASGI. The
    # operator's CONN_MAX_AGE applies to WSGI servers only.
    result = python("-c", CONN_MAX_AGE_OF.format(module=entry_point), CONN_MAX_AGE="60")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == expected


GC_STATE_OF = "import {module}, gc; print(gc.get_freeze_count(), gc.get_threshold()[2])"


@pytest.mark.parametrize("entry_point", ["gameapp.asgi", "gameapp.wsgi"])
def test_a_server_process_keeps_its_loaded_app_out_of_full_collections(entry_point):
    # gameapp/heap.py: a full collection over the loaded app stalled a
    # worker's requests for 100-210 ms. A process that set Django up itself
    # (the test suite) keeps the collector's defaults.
    served = python("-c", GC_STATE_OF.format(module=entry_point))
    assert served.returncode == 0, served.stderr
    frozen, full_threshold = map(int, served.stdout.split()[-2:])
    assert frozen > 50_000 and full_threshold == 1000
    imported = python("-c", "import django; django.setup(); " + GC_STATE_OF.format(module=entry_point))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split()[-2:] == ["0", "10"]
