"""Liveness and readiness, against the real moto server and Redis."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_without_any_dependency(client, settings):
    settings.DYNAMODB_ENDPOINT_URL = "http://127.0.0.1:1"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.usefixtures("table", "redis_url")
def test_readyz_is_ready_when_dynamodb_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["dynamodb"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["consumers_alive"] == 0


@pytest.mark.usefixtures("table", "redis_url")
def test_readyz_is_503_naming_the_dependency_that_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["dynamodb"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]
