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
    assert body["workers_alive"] == 0


@pytest.mark.usefixtures("redis_url")
def test_readyz_is_503_naming_the_dependency_that_is_down(client, settings):
    settings.DYNAMODB_ENDPOINT_URL = "http://127.0.0.1:1"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["dynamodb"]["ok"] is False and body["checks"]["dynamodb"]["error"]


@pytest.mark.usefixtures("table", "redis_url")
def test_readyz_without_redis_is_degraded_not_unready(client, settings):
    """Submissions and pages go on without Redis: a load balancer must not
    take every web process out over it."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["dynamodb"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]


def test_readyz_names_the_failure_without_endpoints_and_logs_the_details(client, settings, caplog):
    settings.REDIS_URL = "redis://localhost:1/0"
    settings.DYNAMODB_ENDPOINT_URL = "http://127.0.0.1:1"
    response = client.get("/readyz")
    assert response.status_code == 503
    text = response.content.decode()
    assert "127.0.0.1" not in text and "localhost" not in text
    checks = response.json()["checks"]
    for name in ("dynamodb", "redis"):
        assert checks[name]["ok"] is False
        assert checks[name]["error"].isidentifier(), checks[name]  # an exception class name, nothing more
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "scoring.health")
    assert "dynamodb" in logged and "127.0.0.1:1" in logged
    assert "redis" in logged and "localhost:1" in logged


@pytest.mark.usefixtures("table", "redis_url")
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_answers_a_probe_by_ip_when_allowed_hosts_is_a_name(client, settings, path):
    # Load balancers and the Dockerfile's HEALTHCHECK probe http://<ip>:8000/.
    settings.ALLOWED_HOSTS = ["scores.example.com"]
    response = client.get(path, HTTP_HOST="10.0.3.17:8000")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"].startswith("max-age=0")
    # Everything else still checks the host.
    assert client.get("/api/tasks/", HTTP_HOST="10.0.3.17:8000").status_code == 400
    assert client.get(path + "/extra", HTTP_HOST="10.0.3.17:8000").status_code == 400
