"""Targeted rank-change pushes, end to end: three players on real websockets
to a running web server, the real consumer between the stream and them.

A board of two (LEADERBOARD_SIZE=2): Ann first, Bob second, Cy third. Cy
scores twice and passes Bob (not Ann, who reached the same total first).
Cy and Bob each get exactly one ``rank.change``, at the top-2 boundary;
Ann gets none.
"""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import websockets

from gameapp.processes import free_port, wait_for_port, web_server_args
from scoring import store
from scoring.domain import Submission
from tests.conftest import ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PLAYERS = ("Ann", "Bob", "Cy")


@pytest.fixture
def stack(moto_server, redis_url, table, tmp_path):
    """The web server and consume_scores on the test's table and a clean Redis (the
    boards of earlier tests would rank above these players), with a board of two
    and no hold rules; returns (web URL, {name: (player id, session key)})."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gameapp.settings.base", "SECRET_KEY": "e2e-tests-only",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DYNAMODB_ENDPOINT_URL": moto_server,
           "DYNAMODB_TABLE": table, "REDIS_URL": redis_url, "ALLOWED_HOSTS": "127.0.0.1",
           "STREAM_POLL_INTERVAL": "0.1", "LEADERBOARD_SIZE": "2", "SCORE_HOLD_RULES": "off", "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = ("from django.contrib.auth.models import User; from django.contrib.sessions.backends.db import "
              "SessionStore\n"
              f"for name in {PLAYERS!r}:\n"
              "    u = User.objects.create_user(name)\n"
              "    s = SessionStore(); s['_auth_user_id'] = str(u.pk); "
              "s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'; "
              "s['_auth_user_hash'] = u.get_session_auth_hash(); s.create()\n"
              "    print('PLAYER', name, u.pk, s.session_key)")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    players = {name: (pk, key) for _, name, pk, key in (line.split() for line in out.splitlines()
                                                         if line.startswith("PLAYER "))}
    port = free_port()
    logs = [open(tmp_path / f"{name}.log", "wb") for name in ("web", "consumer")]
    procs = [subprocess.Popen(web_server_args(port=port), cwd=ROOT, env=env, stdout=logs[0],
                              stderr=subprocess.STDOUT),
             subprocess.Popen([sys.executable, "manage.py", "consume_scores"], cwd=ROOT, env=env,
                              stdout=logs[1], stderr=subprocess.STDOUT)]
    try:
        wait_for_port(port, proc=procs[0])
        yield f"http://127.0.0.1:{port}", players
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
        for log in logs:
            log.close()


def score(player_id: str, name: str, times: int) -> None:
    """Submissions already accepted: SCORE items, as the API writes them."""
    for _ in range(times):
        store.score_put(submission=Submission(id=str(uuid.uuid4()), player_id=player_id, player_name=name,
                                              task="warm-up-sums", submitted_at=datetime.now(UTC)))


async def listen(web: str, players: dict) -> tuple[list[asyncio.Task], dict[str, list[dict]]]:
    """Open each player's socket; collect every message (but heartbeats) it
    gets until the delta that shows a player named Marker: a batch after
    the scenario's, so anything the scenario sent a socket came before it
    (one channel delivers in order). Returns once every socket is open."""
    ws_url = web.replace("http", "ws") + "/ws/leaderboard/?window=all"
    got: dict[str, list[dict]] = {}

    async def one(name: str, ready: asyncio.Event):
        _, session = players[name]
        async with websockets.connect(ws_url, additional_headers={"Origin": web, "Cookie": f"sessionid={session}"},
                                      open_timeout=10) as ws:
            got[name] = []
            assert json.loads(await ws.recv())["type"] == "snapshot"
            ready.set()
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                if message["type"] == "heartbeat":
                    continue
                got[name].append(message)
                if message["type"] == "delta" and any(e["player"] == "Marker" for e in message["changes"]):
                    return

    events = [asyncio.Event() for _ in PLAYERS]
    tasks = [asyncio.create_task(one(name, ready)) for name, ready in zip(PLAYERS, events, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout=30)
    return tasks, got


def test_rank_change_goes_to_the_two_involved_and_never_to_the_third(stack):
    web, players = stack
    (ann, _), (bob, _), (cy, _) = (players[n] for n in PLAYERS)
    score(ann, "Ann", 3)
    score(bob, "Bob", 2)
    score(cy, "Cy", 1)
    points = wait_until(lambda: (t := store.totals_get_many(player_ids=[ann]).get(ann)) and t.total // 3,
                        timeout=60, message="the setup was not applied")
    wait_until(lambda: all((t := store.totals_get_many(player_ids=[p]).get(p)) and t.total == n * points
                           for p, n in ((ann, 3), (bob, 2), (cy, 1))), timeout=60)

    async def scenario():
        tasks, got = await listen(web, players)
        await asyncio.to_thread(score, cy, "Cy", 2)
        await asyncio.to_thread(wait_until, lambda: store.totals_get_many(player_ids=[cy])[cy].total == 3 * points,
                                timeout=60)
        await asyncio.to_thread(score, "marker-" + uuid.uuid4().hex[:6], "Marker", 1)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        return got

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may hold this thread's loop
        got = pool.submit(asyncio.run, scenario()).result(timeout=180)

    def rank_changes(name):
        return [m for m in got[name] if m["type"] == "rank.change"]

    assert rank_changes("Cy") == [{"type": "rank.change", "window": "all", "rank": 2, "previous_rank": 3,
                                   "passed": [{"player_id": bob, "player": "Bob"}], "passed_by": [],
                                   "entered_top": 2, "left_top": None}]
    assert rank_changes("Bob") == [{"type": "rank.change", "window": "all", "rank": 3, "previous_rank": 2,
                                    "passed": [], "passed_by": [{"player_id": cy, "player": "Cy"}],
                                    "entered_top": None, "left_top": 2}]
    assert rank_changes("Ann") == []
    # Each socket saw the scenario's deltas and the marker's: the silence is positive.
    assert all(any(m["type"] == "delta" for m in got[name]) for name in PLAYERS)
