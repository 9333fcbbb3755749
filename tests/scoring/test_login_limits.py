"""Password guessing is rate limited, on the login form and on /api/token/."""

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    settings.LOGIN_RATE = "3/hour"  # hourly windows: a test never straddles two
    cache.clear()
    yield
    cache.clear()


def test_login_form_refuses_a_flood_of_guesses(client, player):
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "ada", "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123"})
    assert response.status_code == 429
    assert "Too many login attempts" in response.content.decode()


def test_login_form_still_logs_in_under_the_limit(client, player):
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123"})
    assert response.status_code == 302


def test_token_endpoint_refuses_a_flood_with_429_and_retry_after(api_client, player):
    for _ in range(3):
        response = api_client.post("/api/token/", {"username": "ada", "password": "wrong"}, format="json")
        assert response.status_code == 400
    response = api_client.post("/api/token/", {"username": "ada", "password": "pw-ada-123"}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"]
