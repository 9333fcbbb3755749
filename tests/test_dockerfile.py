"""The image's static files work with the production settings.

There is no Docker engine here, so the test does what the build does: copy
the Dockerfile's COPY sources into a fresh directory, run its collectstatic
command as written there, then render pages with the image's runtime
settings module. A page whose static file is missing from the manifest is a
500 in production.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["/accounts/login/", "/leaderboard/", "/admin/login/", "/api/docs/"]

# Rendered inside the built tree with the runtime settings; prints each page's
# status and the first static URL it links to.
RENDER = """
import json, re, django
django.setup()
from django.test import Client
client = Client(raise_request_exception=False, HTTP_HOST="localhost")
out = {}
for path in %r:
    response = client.get(path, secure=True)
    static = re.findall(r'(?:href|src)="(/static/[^"]+)"', response.content.decode())
    asset = client.get(static[0], secure=True) if static else None
    out[path] = [response.status_code, static[:1], asset.status_code if asset else None]
print(json.dumps(out))
"""


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [tuple(line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


def collectstatic_command() -> tuple[dict[str, str], list[str]]:
    """The environment and argv of the build's collectstatic, from its RUN line."""
    for instruction, args in dockerfile_instructions():
        if instruction == "RUN" and "collectstatic" in args:
            segment = next(part for part in args.split("&&") if "collectstatic" in part)
            words = shlex.split(segment)
            env = {}
            while "=" in words[0]:
                name, _, value = words.pop(0).partition("=")
                env[name] = value
            return env, words
    raise AssertionError("the Dockerfile has no collectstatic step")


def runtime_settings_module() -> str:
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV" and args.startswith("DJANGO_SETTINGS_MODULE="):
            return args.split("=", 1)[1]
    raise AssertionError("the Dockerfile sets no runtime DJANGO_SETTINGS_MODULE")


@pytest.fixture
def built_app(tmp_path):
    """A directory laid out like the image's /app after its RUN steps."""
    app = tmp_path / "app"
    app.mkdir()
    for instruction, args in dockerfile_instructions():
        if instruction != "COPY":
            continue
        *sources, _dest = args.split()
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, app / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(src, app / source)
    env, argv = collectstatic_command()
    assert argv[0] == "python"
    base_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, *argv[1:]], cwd=app, env={**base_env, **env},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return app, base_env


def test_pages_render_with_the_static_files_the_image_collects(built_app):
    app, base_env = built_app
    assert (app / "staticfiles" / "staticfiles.json").is_file()
    env = {**base_env, "DJANGO_SETTINGS_MODULE": runtime_settings_module(),
           "SECRET_KEY": "a-real-runtime-secret-for-this-test-0123456789-abcdefghijklmnop",
           "DATABASE_URL": f"sqlite:///{app / 'db.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", RENDER % (PAGES,)], cwd=app, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    pages = json.loads(result.stdout.splitlines()[-1])
    for path, (status, static, asset_status) in pages.items():
        assert status == 200, (path, result.stderr[-3000:])
        # A hashed name (app.<hash>.css), served by WhiteNoise from the collected files.
        assert static and re.search(r"\.[0-9a-f]{12}\.", static[0]), (path, static)
        assert asset_status == 200, (path, static)


def test_the_image_does_not_keep_the_build_only_secret_key():
    env, _ = collectstatic_command()
    runtime_env = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "ENV")
    assert "SECRET_KEY" in env
    assert "SECRET_KEY" not in runtime_env


def test_the_image_and_compose_start_uvicorn_with_the_options_the_tests_use():
    # The tests, the benchmarks and make run start gameapp.processes.web_server_args.
    from gameapp.processes import UVICORN_OPTIONS

    expected = ["uvicorn", *UVICORN_OPTIONS, "--host", "0.0.0.0", "--port", "8000", "gameapp.asgi:application"]
    cmd = next(args for instruction, args in dockerfile_instructions() if instruction == "CMD")
    assert json.loads(cmd) == expected
    compose = re.search(r"^  web:\n(?:    .*\n)*?    command: (.+)$", (ROOT / "docker-compose.yml").read_text(), re.M)
    assert compose and shlex.split(compose.group(1)) == expected
