"""The live stack for browser tests: the web server as deployed (uvicorn), consume_scores, moto, Redis,
Chromium."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gameapp.processes import free_port, wait_for_port, web_server_args
from tests.conftest import ARTIFACTS, ROOT


class Live:
    """The running site: its URL, and manage.py against its database."""

    def __init__(self, url: str, env: dict):
        self.url = url
        self.env = env

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout


@pytest.fixture
def live_stack(moto_server, redis_url, table, tmp_path):
    """A running web server (uvicorn, as deployed) and stream consumer on the test's table."""
    db = tmp_path / "live.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gameapp.settings.base", "DEBUG": "1",
           "SECRET_KEY": "e2e-tests-only", "DATABASE_URL": f"sqlite:///{db}", "DYNAMODB_ENDPOINT_URL": moto_server,
           "DYNAMODB_TABLE": table, "REDIS_URL": redis_url, "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "STREAM_POLL_INTERVAL": "0.1", "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("web", "consumer")}
    procs = [
        subprocess.Popen(web_server_args(port=port), cwd=ROOT, env=env, stdout=logs["web"], stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "manage.py", "consume_scores"], cwd=ROOT, env=env,
                         stdout=logs["consumer"], stderr=subprocess.STDOUT),
    ]
    try:
        wait_for_port(port, proc=procs[0])
        yield Live(f"http://127.0.0.1:{port}", env)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
        for name, log in logs.items():
            log.close()
            (ARTIFACTS / f"{name}.log").parent.mkdir(exist_ok=True)
            (ARTIFACTS / f"{name}.log").write_bytes((tmp_path / f"{name}.log").read_bytes())


class LiveStack(Live):
    """The running site, whose consumer a test may stop and start again."""

    def __init__(self, url: str, env: dict, logs: dict):
        super().__init__(url, env)
        self.logs = logs
        self.consumer = None

    def consumer_start(self) -> None:
        """Start ``consume_scores`` (again), logging to the same file."""
        assert self.consumer is None or self.consumer.poll() is not None, "the consumer is already running"
        self.consumer = subprocess.Popen([sys.executable, "manage.py", "consume_scores"], cwd=ROOT, env=self.env,
                                         stdout=self.logs["consumer"], stderr=subprocess.STDOUT)

    def consumer_stop(self) -> None:
        """SIGTERM, as a deploy stops it: it finishes its batch and exits."""
        if self.consumer is not None and self.consumer.poll() is None:
            self.consumer.terminate()
            self.consumer.wait(timeout=15)


@pytest.fixture
def start_live_stack(moto_server, redis_url, table, tmp_path):
    """Call it with settings to override (``PIPELINE_HEARTBEAT_SECONDS="1"``)
    to run the web server and a consumer on the test's table and a clean Redis, as
    ``live_stack`` does; returns a LiveStack. Everything stops at teardown."""
    started: list[tuple[subprocess.Popen, LiveStack]] = []

    def start(**overrides: str) -> LiveStack:
        db = tmp_path / f"live-{len(started)}.sqlite3"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gameapp.settings.base", "DEBUG": "1",
               "SECRET_KEY": "e2e-tests-only", "DATABASE_URL": f"sqlite:///{db}",
               "DYNAMODB_ENDPOINT_URL": moto_server, "DYNAMODB_TABLE": table, "REDIS_URL": redis_url,
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "STREAM_POLL_INTERVAL": "0.1", "PYTHONUNBUFFERED": "1",
               **overrides}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        port = free_port()
        logs = {name: open(tmp_path / f"{name}-{len(started)}.log", "ab") for name in ("web", "consumer")}
        web = subprocess.Popen(web_server_args(port=port), cwd=ROOT, env=env, stdout=logs["web"],
                               stderr=subprocess.STDOUT)
        stack = LiveStack(f"http://127.0.0.1:{port}", env, logs)
        started.append((web, stack))
        stack.consumer_start()
        wait_for_port(port, proc=web)
        return stack

    yield start
    for web, stack in started:
        web.terminate()
        stack.consumer_stop()
        web.wait(timeout=15)
        for name, log in stack.logs.items():
            log.close()
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / f"{name}.log").write_bytes(Path(log.name).read_bytes())
