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
    spectator.goto(f"{live_stack.url}/leaderboard/")
    expect(spectator.locator("[data-role=connection-status]")).to_have_attribute("data-state", "live", timeout=15_000)
    screenshot(spectator, "01-spectator-empty-board")

    player = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone
    player.goto(f"{live_stack.url}/signup/")
    player.fill("input[name=username]", "ada")
    player.fill("input[name=password1]", "a-long-pass-phrase-1")
    player.fill("input[name=password2]", "a-long-pass-phrase-1")
    player.click("button[type=submit]")
    player.goto(f"{live_stack.url}/play/")
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


def test_staff_retries_a_rejected_submission_from_the_pipeline_page(live_stack, browser, screenshot):
    import time
    import uuid
    from datetime import UTC, datetime

    from scoring import store
    from scoring.domain import Status, Submission, retry_id

    live_stack.manage("shell", "-c", "from django.contrib.auth.models import User; "
                      "User.objects.create_superuser('boss', password='a-long-pass-phrase-2')")
    slug = f"comeback-{uuid.uuid4().hex[:6]}"
    submission = Submission(id=str(uuid.uuid4()), player_id="x1", player_name="Xena", task=slug,
                            submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)  # its task does not exist yet: the consumer rejects it
    deadline = time.monotonic() + 20
    while store.score_get(submission_id=submission.id).status is not Status.REJECTED:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    live_stack.manage("shell", "-c", "from scoring.models import Task, Difficulty; Task.objects.create("
                      f"slug='{slug}', title='Comeback', difficulty=Difficulty.objects.get(name='Hard'))")

    page = browser.new_context().new_page()
    page.goto(f"{live_stack.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "a-long-pass-phrase-2")
    page.click("input[type=submit]")
    page.click("text=Pipeline: consumers, lag, rejected and dead letters")
    row = page.locator(f"[data-role=rejected] [data-submission-id='{submission.id}']")
    expect(row).to_contain_text("no longer exists")
    screenshot(page, "05-pipeline-rejected")
    row.locator("[data-action=retry]").click()
    expect(page.locator("[data-role=message]")).to_contain_text("back in the pipeline")
    deadline = time.monotonic() + 20
    while (store.score_get(submission_id=retry_id(submission.id)) or submission).status is not Status.APPLIED:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert store.totals_get_many(player_ids=["x1"])["x1"].total == 50
    page.reload()
    expect(page.locator("[data-role=worker]")).to_have_count(1)
    expect(row.locator("[data-role=retried]")).to_be_visible()
    screenshot(page, "06-pipeline-after-retry")
