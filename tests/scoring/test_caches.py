"""The submit path's per-process caches never outlive a change made here."""

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scoring import selectors
from scoring.models import Difficulty, Task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table", "trusted")]


def submit(client, task="warm-up-sums"):
    return client.post("/api/scores/", data=json.dumps({"task": task}), content_type="application/json")


def test_deleted_token_is_refused_at_once_despite_the_cache(player, settings):
    settings.TOKEN_CACHE_SECONDS = 60
    token = Token.objects.create(user=player)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert submit(client).status_code == 202
    token.delete()
    assert submit(client).status_code == 401


def test_deactivated_user_is_refused_at_once_despite_the_cache(player, player_client, settings):
    settings.TOKEN_CACHE_SECONDS = 60
    assert submit(player_client).status_code == 202
    player.is_active = False
    player.save()
    assert submit(player_client).status_code == 401


def test_task_deactivated_in_admin_is_refused_at_once_despite_the_cache(player_client, settings, admin_client):
    settings.TASK_CACHE_SECONDS = 60
    assert submit(player_client).status_code == 202
    task = Task.objects.get(slug="warm-up-sums")
    admin_client.post("/admin/scoring/task/", {"action": "deactivate", "_selected_action": [task.pk]})
    assert not Task.objects.get(slug="warm-up-sums").active
    assert submit(player_client).status_code == 400


def test_task_edited_with_save_is_seen_at_once(player_client, settings):
    settings.TASK_CACHE_SECONDS = 60
    assert submit(player_client, "times-tables").status_code == 202
    task = Task.objects.get(slug="times-tables")
    task.active = False
    task.save()
    assert submit(player_client, "times-tables").status_code == 400


def test_task_moved_in_bulk_is_seen_at_once(settings):
    settings.TASK_CACHE_SECONDS = 60
    selectors.task_cache_clear()  # what earlier tests left is not this database's
    assert selectors.task_get_active(slug="times-tables").difficulty.name == "Easy"
    Task.objects.filter(slug="times-tables").update(difficulty=Difficulty.objects.get(name="Hard"))
    assert selectors.task_get_active(slug="times-tables").difficulty.name == "Hard"
