"""A real browser against the live stack: a player plays, a spectator watches.

Player A completes a task in one browser context; spectator B's leaderboard
updates without a reload; A's play page shows pending, then applied.
"""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def solve(expression: str) -> int:
    """The answer to a challenge question's machine-readable expression."""
    a, op, b = re.fullmatch(r"\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*", expression).groups()
    a, b = int(a), int(b)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]


def test_player_scores_and_spectator_sees_it_live(live_stack, browser, screenshot):
    spectator = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
    spectator.goto(f"{live_stack}/leaderboard/")
    expect(spectator.locator("[data-role=connection-status]")).to_have_attribute("data-state", "live", timeout=15_000)
    screenshot(spectator, "01-spectator-empty-board")

    player = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone
    player.goto(f"{live_stack}/signup/")
    player.fill("input[name=username]", "ada")
    player.fill("input[name=password1]", "a-long-pass-phrase-1")
    player.fill("input[name=password2]", "a-long-pass-phrase-1")
    player.click("button[type=submit]")
    player.goto(f"{live_stack}/play/")
    card = player.locator("[data-task=warm-up-sums]")
    card.locator("[data-action=play]").click()
    status = card.locator("[data-role=submission-status]")
    for _ in range(20):  # the easiest task has a few questions
        if status.count() and status.get_attribute("data-status"):
            break
        question = card.locator("[data-role=question]")
        if not question.count():
            break
        answer = solve(question.get_attribute("data-expression"))
        card.locator("input[name=answer]").fill(str(answer))
        card.locator("input[name=answer]").press("Enter")
    expect(status).to_have_attribute("data-status", re.compile("pending|applied"), timeout=10_000)
    screenshot(player, "02-player-submitted")
    expect(status).to_have_attribute("data-status", "applied", timeout=15_000)
    expect(status).to_contain_text("applied")
    screenshot(player, "03-player-applied")

    row = spectator.locator("[data-role=board] [data-player-id]").first
    expect(row).to_contain_text("ada", timeout=15_000)
    expect(row.locator("[data-role=total]")).to_contain_text("10")
    screenshot(spectator, "04-spectator-updated-live")
