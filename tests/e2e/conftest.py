"""The live stack for browser tests: daphne, consume_scores, moto, Redis, Chromium."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(ROOT) / "test-artifacts"
# Without the background-networking flags Chromium keeps dialling Google on a
# machine with no internet (NOTES.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


class Live:
    """The running site: its URL, and manage.py against its database."""

    def __init__(self, url: str, env: dict):
        self.url = url
        self.env = env

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout


@pytest.fixture
def live_stack(moto_server, redis_server, table, tmp_path):
    """A running web server (daphne) and stream consumer on the test's table."""
    db = tmp_path / "live.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gameapp.settings.base", "DEBUG": "1",
           "SECRET_KEY": "e2e-tests-only", "DATABASE_URL": f"sqlite:///{db}", "DYNAMODB_ENDPOINT_URL": moto_server,
           "DYNAMODB_TABLE": table, "REDIS_URL": redis_server, "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "STREAM_POLL_INTERVAL": "0.1", "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("web", "consumer")}
    procs = [
        subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                          "gameapp.asgi:application"], cwd=ROOT, env=env, stdout=logs["web"], stderr=subprocess.STDOUT),
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


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, driven by Playwright. Missing Chromium fails the
    run: CI installs it (.ci/run), and a skipped browser test proves nothing."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
