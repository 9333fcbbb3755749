"""A real browser against the live stack: staff re-score the past in admin,
and a player's open "My scores" page hears it.

The player earns 10 points on an Easy task through a server challenge and
opens "My scores". Staff change Easy from 10 to 15 points in admin, choose
retroactive, see the preview, and apply it. Without a reload, the player's
page shows the adjustment as a notice ("Easy re-scored 10 → 15: +5"), and
its ledger adds up to the new total.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import play, sign_up, staff_login

pytestmark = pytest.mark.slow


def ledger_points(page) -> list[int]:
    """The Points column of the page's ledger, as numbers."""
    texts = page.locator("[data-role=ledger-rows] tr td:nth-child(3)").all_text_contents()
    return [int(t.replace("−", "-").replace("±", "")) for t in texts]


def test_staff_preview_and_apply_a_retroactive_change_and_the_player_sees_it_live(live_stack, browser, screenshot):
    live_stack.manage("shell", "-c", "from scoring.models import Difficulty; "
                      "Difficulty.objects.filter(name='Easy').update(review_seconds=None)")
    player = sign_up(browser, live_stack.url, "ada")
    card = player.locator("[data-task=warm-up-sums]")
    card.locator("[data-action=play]").click()
    play(card)
    expect(card.locator("[data-role=submission-status]")).to_have_attribute("data-status", "applied",
                                                                             timeout=20_000)
    player.click("text=My scores")
    expect(player.locator("[data-role=summary]")).to_contain_text("Your total: 10 points", timeout=10_000)
    expect(player.locator("[data-role=ledger-rows] tr")).to_have_count(1)
    expect(player.locator("[data-role=chart] canvas")).to_have_count(1)
    screenshot(player, "10-my-scores-before")

    staff = staff_login(browser, live_stack)
    staff.goto(f"{live_stack.url}/admin/scoring/difficulty/")
    staff.get_by_role("link", name="Easy", exact=True).click()
    staff.fill("input[name=points]", "15")
    staff.fill("textarea[name=rules_reason]", "Easy was too cheap")
    staff.click("input[type=submit][name=_save]")
    # Without a mode the change is refused: it is a rules change.
    expect(staff.locator(".errorlist")).to_contain_text("choose forward or retroactive")
    staff.check("input[name=rules_mode][value=retroactive]")
    staff.click("input[type=submit][name=_save]")
    preview = staff.locator("[data-role=rescore-preview]")
    expect(preview).to_be_visible()
    expect(preview.locator("[data-role=players-affected]")).to_have_text("1 of 1")
    expect(preview.locator("[data-role=points-delta]")).to_have_text("5")
    expect(preview.locator("[data-role=top-after]")).to_contain_text("15")
    screenshot(staff, "11-admin-rescore-preview")
    staff.click("[data-action=apply]")
    expect(staff.locator(".messagelist")).to_contain_text("applied: Easy re-scored 10 → 15")
    screenshot(staff, "12-admin-rules-change-applied")

    # Live, on the page the player left open.
    notice = player.locator("[data-role=notice]")
    expect(notice).to_contain_text("Easy re-scored 10 → 15: +5", timeout=20_000)
    expect(notice).to_contain_text("Easy was too cheap")
    expect(player.locator("[data-role=summary]")).to_contain_text("Your total: 15 points")
    expect(player.locator("[data-role=ledger-rows] tr")).to_have_count(2)
    assert sum(ledger_points(player)) == 15
    expect(player.locator("[data-role=ledger-rows] tr").first).to_contain_text(re.compile(r"\+5\s*15"))
    screenshot(player, "13-my-scores-adjusted-live")
    notice.get_by_role("button", name=re.compile("Dismiss")).click()
    expect(notice).to_have_count(0)
