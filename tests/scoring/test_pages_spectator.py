"""What the leaderboard and play pages hand their scripts for freshness,
rank-change notices and the spectator's dashboard (the browser test,
tests/e2e/test_spectator.py, drives them)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse

from tests.scoring.test_pages import json_script, no_backends  # noqa: F401 (an autouse fixture)

pytestmark = pytest.mark.django_db


def test_leaderboard_passes_the_delay_setting_and_the_dashboard_urls(client, settings):
    settings.PIPELINE_DELAYED_AFTER_SECONDS = 7.5
    config = json_script(client.get(reverse("leaderboard-page")), "leaderboard-config")

    assert config["delayedAfterSeconds"] == 7.5
    assert config["historyUrl"] == reverse("leaderboard-history") == "/api/leaderboard/history/"
    assert config["activityUrl"] == reverse("activity") == "/api/activity/"


@pytest.mark.parametrize(("url_name", "scripts"), [
    ("play", ["scoring/notices.js", "scoring/play.js"]),
    ("leaderboard-page", ["vendor/uplot/uPlot.iife.min.js", "scoring/freshness.js", "scoring/notices.js",
                          "scoring/activity.js", "scoring/history_chart.js", "scoring/leaderboard.js"]),
])
def test_pages_load_their_modules_before_the_page_script(client, player, url_name, scripts):
    client.force_login(player)
    html = client.get(reverse(url_name)).text

    positions = [html.index(f'"{static(path)}"') for path in scripts]
    assert positions == sorted(positions)
    assert all(finders.find(path) for path in scripts)


@pytest.mark.parametrize("url_name", ["play", "leaderboard-page"])
def test_rank_notices_are_a_polite_live_region(client, player, url_name):
    client.force_login(player)
    html = client.get(reverse(url_name)).text

    region = re.search(r'<div[^>]*data-role="rank-notices"[^>]*>', html).group(0)
    assert 'aria-live="polite"' in region and 'role="status"' in region
