"""The server-rendered pages: who may see them, what they render, and that
they render without DynamoDB or Redis (scores reach the browser later, over
the API and the websocket)."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse

from scoring.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_backends(monkeypatch):
    """Fail the test if rendering calls DynamoDB or builds a channel layer."""

    def refuse(*args, **kwargs):
        raise AssertionError("pages must not call DynamoDB or Redis at render time")

    monkeypatch.setattr("botocore.client.BaseClient._make_api_call", refuse)
    monkeypatch.setattr("channels.layers.ChannelLayerManager.__getitem__", refuse)


@pytest.fixture
def browser_client(client, player):
    """A browser (session) test client, logged in as the player."""
    client.force_login(player)
    return client


def json_script(response, element_id):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', response.text, re.S)
    assert match, f"no json_script {element_id!r}"
    return json.loads(match.group(1))


def test_play_redirects_anonymous_visitor_to_login(client):
    response = client.get(reverse("play"))

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('play')}"


def test_play_shows_a_card_per_active_task_with_its_points(browser_client):
    response = browser_client.get(reverse("play"))

    assert response.status_code == 200
    tasks = list(Task.objects.active().select_related("difficulty"))
    assert len(tasks) == 8  # the seeded catalog
    for task in tasks:
        assert f'data-task="{task.slug}"' in response.text
        assert task.title in response.text
        assert f'<span data-role="points">{task.difficulty.points}</span> points' in response.text
    assert response.text.count('data-action="play"') == len(tasks)
    assert response.text.count('data-role="submission-status"') == len(tasks)


def test_play_orders_cards_easiest_first(browser_client):
    html = browser_client.get(reverse("play")).text

    positions = [html.index(f'data-task="{task.slug}"') for task in Task.objects.order_by("difficulty__ordering")]
    levels = [task.difficulty.ordering for task in Task.objects.order_by("difficulty__ordering")]
    assert [level for _, level in sorted(zip(positions, levels, strict=True))] == sorted(levels)


def test_play_leaves_out_inactive_tasks(browser_client):
    Task.objects.filter(slug="big-products").update(active=False)

    response = browser_client.get(reverse("play"))

    assert 'data-task="big-products"' not in response.text
    assert 'data-task="times-tables"' in response.text


def test_play_sets_the_csrf_cookie_for_script_posts(browser_client):
    response = browser_client.get(reverse("play"))

    assert response.cookies["csrftoken"].value


def test_play_has_a_labelled_answer_input_and_no_answer_in_the_markup(browser_client):
    html = browser_client.get(reverse("play")).text

    assert '<input name="answer" type="number"' in html
    assert "<label>What is <span data-role=\"question\"></span>?</label>" in html
    assert "data-answer" not in html


def test_play_passes_the_player_and_urls_to_its_script(browser_client, player):
    response = browser_client.get(reverse("play"))

    assert json_script(response, "player-data") == {"id": str(player.pk), "name": "Ada"}
    assert json_script(response, "play-config") == {"scoresUrl": "/api/scores/", "socketPath": "/ws/leaderboard/",
                                                    "challengesUrl": "/api/tasks/__slug__/challenges/"}


def test_leaderboard_renders_for_anonymous_visitor(client):
    response = client.get(reverse("leaderboard-page"))

    assert response.status_code == 200
    html = response.text
    assert 'role="tablist"' in html
    assert html.count('role="tab"') == 3
    assert re.search(r'data-window="all"[^>]*aria-selected="true"', html, re.S)
    assert '<ol class="board" data-role="board"' in html
    assert re.search(r'aria-live="polite" data-role="connection-status" data-state="connecting">Connecting…<', html)
    assert json_script(response, "viewer-data") is None


def test_leaderboard_shows_as_many_players_as_the_socket_sends(client, settings):
    settings.LEADERBOARD_SIZE = 25
    response = client.get(reverse("leaderboard-page"))
    assert json_script(response, "leaderboard-config")["limit"] == 25
    assert "The top 25 players" in response.text


@pytest.mark.parametrize(("query", "selected"), [
    ("?window=week", "week"),
    ("?window=day", "day"),
    ("?window=year", "all"),  # unknown: fall back rather than fail
])
def test_leaderboard_starts_on_the_requested_window(client, query, selected):
    response = client.get(reverse("leaderboard-page") + query)

    assert re.search(rf'data-window="{selected}"[^>]*aria-selected="true"', response.text, re.S)
    assert response.text.count('aria-selected="true"') == 1
    assert json_script(response, "leaderboard-config")["window"] == selected


def test_leaderboard_knows_the_logged_in_viewer(browser_client, player):
    response = browser_client.get(reverse("leaderboard-page"))

    assert json_script(response, "viewer-data") == {"id": str(player.pk), "name": "Ada"}
    assert json_script(response, "leaderboard-config")["meUrl"] == reverse("leaderboard-me")


def test_admin_link_appears_only_for_staff(client, browser_client, admin_client):
    admin_link = f'href="{reverse("admin:index")}"'

    assert admin_link in admin_client.get(reverse("leaderboard-page")).text
    assert admin_link not in browser_client.get(reverse("leaderboard-page")).text
    client.logout()
    assert admin_link not in client.get(reverse("leaderboard-page")).text


def test_header_links_to_every_page_and_marks_the_current_one(browser_client):
    html = browser_client.get(reverse("leaderboard-page")).text

    for name in ("home", "play", "api-docs", "logout"):
        assert f'"{reverse(name)}"' in html
    assert f'<a href="{reverse("leaderboard-page")}" aria-current="page">Leaderboard</a>' in html


@pytest.mark.parametrize(("url_name", "scripts"), [
    ("play", ["scoring/ws.js", "scoring/play.js"]),
    ("leaderboard-page", ["scoring/ws.js", "scoring/leaderboard.js"]),
])
def test_pages_include_their_scripts_from_static(browser_client, url_name, scripts):
    html = browser_client.get(reverse(url_name)).text

    for path in [*scripts, "scoring/site.css"]:
        assert f'"{static(path)}"' in html
        assert finders.find(path), f"{path} is not in any static folder"


@pytest.mark.parametrize("url_name", ["home", "play", "leaderboard-page"])
def test_pages_are_ready_for_a_content_security_policy(browser_client, url_name):
    html = browser_client.get(reverse(url_name)).text

    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert "<style" not in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


@pytest.mark.parametrize("url_name", ["home", "play", "leaderboard-page"])
def test_pages_have_a_language_and_landmarks(browser_client, url_name):
    html = browser_client.get(reverse(url_name)).text

    assert '<html lang="en">' in html
    for landmark in ("<header", "<nav", '<main id="main"'):
        assert landmark in html


def test_home_still_lists_the_tasks(client):
    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert "Warm-up sums" in response.text


def test_every_page_names_its_icon_so_browsers_do_not_ask_for_a_missing_favicon_ico(client):
    page = client.get("/").content.decode()
    assert f'<link rel="icon" href="{static("scoring/favicon.svg")}" type="image/svg+xml">' in page
    assert finders.find("scoring/favicon.svg")
