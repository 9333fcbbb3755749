"""Faults injected against the real processes: DynamoDB unreachable, DynamoDB
throttling, Redis down. Nothing is lost or counted twice, and everything
resumes by itself."""

import asyncio
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import urllib3
import websockets

from scoring import store
from scoring.domain import Status, Submission
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

http = urllib3.PoolManager()


def submit_api(web_url, token):
    started = time.monotonic()
    response = http.request("POST", f"{web_url}/api/scores/", body=b'{"task": "warm-up-sums"}',
                            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
                            retries=False, timeout=30)
    return response, time.monotonic() - started


def put_direct(player="f1"):
    """A submission already accepted (written straight to moto, past the proxy)."""
    submission = Submission(id=str(uuid.uuid4()), player_id=player, player_name=player, task="warm-up-sums",
                            submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    return submission.id


def wait_applied(ids, consumer, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        stored = store.scores_get_many(submission_ids=ids)
        if len(stored) == len(ids) and all(s.status is Status.APPLIED for s in stored.values()):
            return
        assert consumer.poll() is None, open(consumer.log_path).read()[-3000:]
        assert time.monotonic() < deadline, open(consumer.log_path).read()[-3000:]
        time.sleep(0.2)


@pytest.mark.parametrize("fault", ["down", "throttle"])
def test_dynamodb_fault_gives_fast_503s_and_the_consumer_resumes_exactly(
        fault, fault_proxy, web_server, start_consumer, api_token):
    web = web_server(DYNAMODB_ENDPOINT_URL=fault_proxy.url)
    consumer = start_consumer(env={"DYNAMODB_ENDPOINT_URL": fault_proxy.url})
    before = [put_direct() for _ in range(5)]
    wait_applied(before, consumer)

    fault_proxy.mode = fault
    response, seconds = submit_api(web, api_token)
    assert response.status == 503
    assert response.headers["Retry-After"]
    assert "unavailable" in json.loads(response.data)["detail"]
    assert seconds < 10, f"the API took {seconds:.1f}s to give up"
    # Bounded: the API's one write (a PutItem of a SCORE item; the consumer
    # never makes one) was tried DYNAMODB_MAX_ATTEMPTS (3) times, no more.
    api_puts = [c for c in fault_proxy.calls if c[0] == fault and c[1].endswith(".PutItem") and b'"SCORE#' in c[2]]
    assert len(api_puts) == 3

    during = [put_direct() for _ in range(5)]  # accepted before the fault, still in the stream
    # botocore retries a throttled call itself (with jitter) before the
    # consumer's own backoff takes over and says so.
    deadline = time.monotonic() + 40
    while "DynamoDB unavailable" not in open(consumer.log_path).read():
        assert consumer.poll() is None, "the consumer must back off, not die"
        assert time.monotonic() < deadline, open(consumer.log_path).read()[-2000:]
        time.sleep(0.3)
    assert "retrying in" in open(consumer.log_path).read()

    fault_proxy.mode = "pass"
    after = [put_direct() for _ in range(5)]
    wait_applied(before + during + after, consumer)
    assert store.totals_get_many(player_ids=["f1"])["f1"].total == 15 * 10
    response, _ = submit_api(web, api_token)
    assert response.status == 202


def test_redis_down_totals_still_apply_and_sockets_resync_when_it_returns(
        own_redis, moto_server, web_server, start_consumer):
    env = {"REDIS_URL": own_redis.url}
    web = web_server(**env)
    consumer = start_consumer(env=env)
    ws_url = web.replace("http://", "ws://") + "/ws/leaderboard/?window=all"

    async def first_message():
        async with websockets.connect(ws_url, additional_headers={"Origin": web}) as ws:
            return json.loads(await ws.recv())

    def snapshot():
        # In its own thread: Playwright's sync API (session fixture) may hold
        # this thread's event loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, first_message()).result(timeout=30)

    first = [put_direct("r1")]
    wait_applied(first, consumer)
    board = snapshot()
    assert [(e["player_id"], e["total"]) for e in board["entries"]] == [("r1", 10)]

    own_redis.stop()
    while_down = [put_direct("r1"), put_direct("r2"), put_direct("r2")]
    wait_applied(while_down, consumer)  # scoring goes on without Redis
    totals = store.totals_get_many(player_ids=["r1", "r2"])
    assert (totals["r1"].total, totals["r2"].total) == (20, 20)
    assert "Leaderboard read model unavailable" in open(consumer.log_path).read()

    own_redis.start()  # back, and empty
    wait_applied([put_direct("r3")], consumer)  # the next batch rebuilds the boards from DynamoDB
    deadline = time.monotonic() + 20
    while True:
        try:
            board = snapshot()  # a browser reconnecting
            entries = {(e["player_id"], e["total"]) for e in board["entries"]}
            if entries == {("r1", 20), ("r2", 20), ("r3", 10)}:
                break
        except (OSError, websockets.WebSocketException):
            pass
        assert time.monotonic() < deadline, (board, open(consumer.log_path).read()[-2000:])
        time.sleep(0.5)
    assert "Healed the stale leaderboards" in open(consumer.log_path).read()


def test_redis_down_and_back_a_real_browser_reconnects_to_the_correct_board(
        own_redis, web_server, start_consumer, browser, screenshot):
    from playwright.sync_api import expect

    env = {"REDIS_URL": own_redis.url}
    web = web_server(DEBUG="1", **env)  # DEBUG: static files straight from the app (no collectstatic)
    consumer = start_consumer(env=env)
    wait_applied([put_direct("b1")], consumer)
    page = browser.new_context().new_page()
    page.goto(f"{web}/leaderboard/")
    status = page.locator("[data-role=connection-status]")
    expect(status).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("[data-role=board] [data-player-id=b1] [data-role=total]")).to_contain_text("10")

    own_redis.stop()
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=20_000)
    wait_applied([put_direct("b1"), put_direct("b2")], consumer)  # scoring goes on
    screenshot(page, "07-redis-down-reconnecting")

    own_redis.start()
    wait_applied([put_direct("b3")], consumer)  # the boards are rebuilt from DynamoDB
    expect(status).to_have_attribute("data-state", "live", timeout=40_000)
    board = page.locator("[data-role=board]")
    expect(board.locator("[data-player-id=b1] [data-role=total]")).to_contain_text("20", timeout=15_000)
    expect(board.locator("[data-player-id=b2] [data-role=total]")).to_contain_text("10")
    expect(board.locator("[data-player-id=b3] [data-role=total]")).to_contain_text("10")
    screenshot(page, "08-redis-back-resynced")


def test_redis_down_submissions_are_still_accepted_and_the_limits_return_with_it(
        own_redis, web_server, api_token, tmp_path):
    # Redis holds only rate-limit counters on these paths: a submission's
    # safety depends on DynamoDB alone, so the limits fail open, and say so.
    web = web_server(REDIS_URL=own_redis.url, SCORE_SUBMIT_RATE="3/hour")
    assert [submit_api(web, api_token)[0].status for _ in range(4)] == [202, 202, 202, 429]

    own_redis.stop()
    response, seconds = submit_api(web, api_token)
    assert response.status == 202, response.data
    assert seconds < 5
    assert json.loads(response.data)["status"] == "pending"
    # Logins are still checked (a wrong password is refused as such), not limited.
    token = http.request("POST", f"{web}/api/token/", body=b'{"username": "nobody", "password": "wrong"}',
                         headers={"Content-Type": "application/json"}, retries=False)
    assert token.status == 400, token.data
    assert "Unable to log in" in token.data.decode()
    assert login_form_post(web, "nobody", "wrong") == 200
    log = "".join(path.read_text() for path in tmp_path.glob("web-*.log"))
    assert "Exception ignored" in log and "ConnectionError" in log

    own_redis.start()  # back, and empty: the count starts again
    assert [submit_api(web, api_token)[0].status for _ in range(4)] == [202, 202, 202, 429]


def login_form_post(web, username, password) -> int:
    page = http.request("GET", f"{web}/accounts/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.data.decode()).group(1)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    response = http.request("POST", f"{web}/accounts/login/", retries=False,
                            fields={"csrfmiddlewaretoken": csrf, "username": username, "password": password},
                            encode_multipart=False, headers={"Cookie": cookie})
    return response.status


def own_catalog(consumer_env, tmp_path) -> tuple[dict, Path]:
    """A migrated SQLite catalog of this test's own, to take away and give
    back, and the environment of child processes that use it."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "catalog.sqlite3"
    env = {**consumer_env, "DATABASE_URL": f"sqlite:///{path}", "CONN_MAX_AGE": "0"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return env, path


def test_the_catalog_database_down_is_an_outage_the_consumer_waits_out(consumer_env, start_consumer, tmp_path):
    """The relational database (the catalog every batch reads first) gone
    for longer than the failure policy's retries: the consumer backs off as
    it does for DynamoDB, nothing is dead-lettered or rejected, and the
    submission applies once the database is back. SQLite, with each batch
    on a new connection: its file moved away, a connection finds an empty
    database (OperationalError: no such table)."""
    env, path = own_catalog(consumer_env, tmp_path)
    consumer = start_consumer(env=env)
    wait_applied([put_direct()], consumer)
    path.rename(tmp_path / "away.sqlite3")
    pending = put_direct()

    def outages() -> int:
        return open(consumer.log_path).read().count("The catalog database unavailable")

    # The failure policy's default: 3 retries, then the record is dead-lettered.
    wait_until(lambda: outages() > 6, timeout=60, message=lambda: open(consumer.log_path).read()[-3000:])
    assert store.score_get(submission_id=pending).status is Status.PENDING
    (tmp_path / "away.sqlite3").replace(path)  # back, over the empty file a connection made meanwhile
    wait_applied([pending], consumer)
    log = open(consumer.log_path).read()
    assert "Dead-lettering" not in log, log[-3000:]


def test_readiness_reports_the_database_down_and_back(consumer_env, web_server, tmp_path):
    """/readyz checks the relational database too: a web process whose
    database is gone answers every API call with a 503, so a load balancer
    must take it out of service, and put it back once the database is."""
    env, path = own_catalog(consumer_env, tmp_path)
    web = web_server(**{k: env[k] for k in ("DATABASE_URL", "CONN_MAX_AGE")})

    def ready():
        response = http.request("GET", f"{web}/readyz", retries=False, timeout=30)
        return response.status, response.json()

    status, body = ready()
    assert status == 200 and body["checks"]["database"]["ok"] is True, body
    path.rename(tmp_path / "away.sqlite3")
    status, body = ready()
    assert status == 503, body
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert body["checks"]["dynamodb"]["ok"] is True
    (tmp_path / "away.sqlite3").replace(path)  # back, over the empty file the check's connection made
    status, body = ready()
    assert status == 200 and body["checks"]["database"]["ok"] is True, body


def test_the_database_down_gives_api_clients_a_503_to_retry_and_writes_nothing(
        consumer_env, web_server, tmp_path, item_count):
    """A database outage is the API's too (it authenticates against it): a
    JSON 503 with Retry-After, as for DynamoDB, not a 500; nothing is
    written; the same request succeeds once the database is back."""
    from tests.faults.conftest import trusted_token

    env, path = own_catalog(consumer_env, tmp_path)
    token = trusted_token(env)  # never used yet: not in the web's token cache
    web = web_server(**{k: env[k] for k in ("DATABASE_URL", "CONN_MAX_AGE")})
    path.rename(tmp_path / "away.sqlite3")
    before = item_count()
    response, _ = submit_api(web, token)
    assert response.status == 503, response.data
    assert int(response.headers["Retry-After"]) > 0
    assert "database" in response.json()["detail"]
    assert item_count() == before
    (tmp_path / "away.sqlite3").replace(path)
    response, _ = submit_api(web, token)
    assert response.status == 202, response.data
    assert item_count() == before + 1
