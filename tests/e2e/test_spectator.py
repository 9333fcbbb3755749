"""The leaderboard page as a spectator and a player see it, in a real
browser against the live stack: the pipeline's freshness, ticking; the
spectator's dashboard (activity, per minute, the top players' chart); a
rank-change notice on the leaderboard and the play page; "delayed" while
the consumer is stopped, and back to normal once it runs again.

Heartbeats every second and "delayed" after 3 s of silence, so the test
waits seconds, not half a minute.
"""

import re
import uuid
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from scoring import store
from scoring.domain import Submission
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

POINTS = 10  # warm-up-sums, Easy, in the seeded catalog


def players(stack, *names: str) -> dict[str, tuple[str, str]]:
    """Users with a logged-in session each: {name: (player id, session key)}."""
    script = ("from django.contrib.auth.models import User; from django.contrib.sessions.backends.db import "
              "SessionStore\n"
              f"for name in {names!r}:\n"
              "    u = User.objects.create_user(name)\n"
              "    s = SessionStore(); s['_auth_user_id'] = str(u.pk); "
              "s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'; "
              "s['_auth_user_hash'] = u.get_session_auth_hash(); s.create()\n"
              "    print('PLAYER', name, u.pk, s.session_key)")
    out = stack.manage("shell", "-c", script)
    return {name: (pk, key) for _, name, pk, key in (line.split() for line in out.splitlines()
                                                     if line.startswith("PLAYER "))}


def score(player_id: str, name: str, times: int) -> None:
    """Accepted submissions, as the API writes them; the consumer applies them."""
    for _ in range(times):
        store.score_put(submission=Submission(id=str(uuid.uuid4()), player_id=player_id, player_name=name,
                                              task="warm-up-sums", submitted_at=datetime.now(UTC)))


def total(player_id: str) -> int:
    found = store.totals_get_many(player_ids=[player_id]).get(player_id)
    return found.total if found else 0


def board_and_play(browser, stack, session: str):
    """A player's leaderboard and play pages, side by side in one browser
    context, and the script errors either page throws."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": stack.url}])
    errors = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    board = context.new_page()
    board.goto(f"{stack.url}/leaderboard/")
    play = context.new_page()
    play.goto(f"{stack.url}/play/")
    return board, play, errors


def seconds_ago(text: str) -> int:
    return int(re.search(r"updated (\d+) s ago", text).group(1))


def test_freshness_dashboard_rank_notice_and_delayed_while_the_consumer_is_stopped(start_live_stack, browser,
                                                                                   screenshot):
    stack = start_live_stack(PIPELINE_HEARTBEAT_SECONDS="1", PIPELINE_DELAYED_AFTER_SECONDS="3",
                             SCORE_HOLD_RULES="off")
    who = players(stack, "Ann", "Bob")
    (ann, ann_session), (bob, _) = who["Ann"], who["Bob"]
    score(bob, "Bob", 2)
    score(ann, "Ann", 1)
    wait_until(lambda: total(bob) == 2 * POINTS and total(ann) == POINTS, timeout=60,
               message="the setup's submissions were not applied")

    board, play, errors = board_and_play(browser, stack, ann_session)
    expect(board.locator("[data-role=connection-status]")).to_have_attribute("data-state", "live", timeout=15_000)

    # Freshness: from the last batch's as_of, ticking each second.
    freshness = board.locator("[data-role=freshness]")
    expect(freshness).to_have_attribute("data-state", "fresh", timeout=10_000)
    expect(freshness).to_have_text(re.compile(r"^updated \d+ s ago · pipeline lag \d+ ms$"))
    before = seconds_ago(freshness.text_content())
    board.wait_for_function("([el, n]) => Number((/updated (\\d+) s ago/.exec(el.textContent) || [])[1]) > n",
                            arg=[freshness.element_handle(), before], timeout=5_000)

    # The dashboard's first paint, from its endpoints: Bob's two coalesced.
    bobs = board.locator(f"[data-role=activity][data-player-id='{bob}']")
    expect(bobs).to_have_attribute("data-count", "2", timeout=10_000)
    expect(bobs).to_contain_text("Bob +10 ×2 · Warm-up sums")
    expect(board.locator("[data-role=per-minute-summary]")).to_have_attribute("data-total", "3")
    caption = board.locator("[data-role=history-caption]")
    expect(caption).to_contain_text("Bob leads with 20 points")
    expect(caption).to_have_attribute("data-players", "2")
    expect(board.locator("[data-role=history-chart] canvas")).to_have_count(1)
    screenshot(board, "spectator-01-dashboard")

    # Ann passes Bob: a notice on both of her pages, in a polite live region.
    score(ann, "Ann", 2)
    for page in (board, play):
        notice = page.locator("[data-role=rank-notice]")
        expect(notice).to_have_count(1, timeout=20_000)
        expect(notice).to_contain_text("You passed Bob — now #1")
        expect(page.locator("[data-role=rank-notices]")).to_have_attribute("aria-live", "polite")
    screenshot(play, "spectator-02-play-rank-notice")
    play.get_by_role("button", name="Dismiss").click()
    expect(play.locator("[data-role=rank-notice]")).to_have_count(0)
    # ...and the dashboard follows the deltas.
    expect(caption).to_contain_text("Ann leads with 30 points", timeout=10_000)
    newest = board.locator("[data-role=activity]").first
    expect(newest).to_have_attribute("data-player-id", ann)
    expect(newest).to_contain_text(re.compile(r"Ann \+10 ×[23]"))
    expect(board.locator("[data-role=per-minute-summary]")).to_have_attribute("data-total", "5")
    screenshot(board, "spectator-03-after-the-pass")

    # No heartbeat for longer than PIPELINE_DELAYED_AFTER_SECONDS: "delayed".
    stack.consumer_stop()
    expect(freshness).to_have_attribute("data-state", "delayed", timeout=15_000)
    expect(freshness).to_contain_text(re.compile(r"^delayed: no word from the scoring pipeline for \d+ s"))
    expect(board.locator("[data-role=freshness-alert]")).to_have_text(
        "Scores are delayed: no word from the scoring pipeline.")
    screenshot(board, "spectator-04-delayed")

    # A consumer again: its first heartbeat ends the delay.
    stack.consumer_start()
    expect(freshness).to_have_attribute("data-state", "fresh", timeout=60_000)
    expect(freshness).to_have_text(re.compile(r"^updated \d+ (s|min) ago · pipeline lag \d+ ms$"))
    expect(board.locator("[data-role=freshness-alert]")).to_have_text("Scores are live again.")
    screenshot(board, "spectator-05-recovered")
    assert errors == []  # no script on either page threw


def test_a_player_passed_by_someone_sees_their_new_rank_in_the_pinned_row_and_on_play(start_live_stack, browser):
    """Bob, out of a top of one, watches his pinned row; Cy passes him. Bob
    changed nothing of his own, so only the rank.change says where he is."""
    stack = start_live_stack(LEADERBOARD_SIZE="1", SCORE_HOLD_RULES="off")
    who = players(stack, "Ann", "Bob", "Cy")
    (ann, _), (bob, bob_session), (cy, _) = who["Ann"], who["Bob"], who["Cy"]
    score(ann, "Ann", 3)
    score(bob, "Bob", 2)
    wait_until(lambda: total(ann) == 3 * POINTS and total(bob) == 2 * POINTS, timeout=60,
               message="the setup's submissions were not applied")

    board, play, errors = board_and_play(browser, stack, bob_session)
    pinned = board.locator("[data-role=me-row]")
    expect(pinned).to_have_attribute("data-rank", "2", timeout=15_000)
    expect(play.locator("[data-role=my-score]")).to_have_text("Your total: 20 points, rank #2", timeout=15_000)

    score(cy, "Cy", 3)  # Cy passes Bob (and ties Ann, who got there first)
    expect(board.locator("[data-role=rank-notice]")).to_contain_text("Cy passed you — now #3", timeout=20_000)
    expect(pinned).to_have_attribute("data-rank", "3")
    expect(pinned).to_contain_text("#3")
    expect(play.locator("[data-role=my-score]")).to_have_text("Your total: 20 points, rank #3", timeout=10_000)
    assert errors == []


def test_a_browser_whose_clock_is_behind_still_shows_a_silent_pipeline_as_delayed(start_live_stack, browser):
    """The snapshot's times are the server's: read on a clock five minutes
    behind, a heartbeat two minutes old would look three minutes ahead, and
    the board "fresh", unless the snapshot says what time the server has."""
    from datetime import timedelta

    from scoring import ranking

    stack = start_live_stack(PIPELINE_DELAYED_AFTER_SECONDS="30", SCORE_HOLD_RULES="off")
    stack.consumer_stop()
    ranking.pipeline_heartbeat(at_ms=int((datetime.now(UTC) - timedelta(minutes=2)).timestamp() * 1000))
    page = browser.new_page()
    page.clock.set_system_time(datetime.now() - timedelta(minutes=5))  # timers still run
    page.goto(f"{stack.url}/leaderboard/")
    freshness = page.locator("[data-role=freshness]")
    expect(freshness).to_have_attribute("data-state", "delayed", timeout=15_000)
    expect(freshness).to_contain_text(re.compile(r"^delayed: no word from the scoring pipeline for 2 min"))
    page.close()
