"""Prometheus metrics are exposed and scraped, from the web and the consumer."""

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scoring import store
from scoring.domain import Submission
from tests.conftest import ROOT, free_port
from tests.waiting import wait_until


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.django_db
@pytest.mark.usefixtures("table", "trusted")
def test_web_metrics_count_submissions_and_time_api_requests(player_client, client):
    def accepted():
        return samples(client.get("/metrics").content.decode()).get(
            ("gamescores_submissions_total", (("outcome", "accepted"),)), 0)

    before = accepted()
    response = player_client.post("/api/scores/", data=json.dumps({"task": "warm-up-sums"}),
                                  content_type="application/json")
    assert response.status_code == 202
    player_client.post("/api/scores/", data="{}", content_type="application/json")
    scraped = client.get("/metrics")
    assert scraped["Content-Type"].startswith("text/plain")
    values = samples(scraped.content.decode())
    assert accepted() == before + 1
    assert values[("gamescores_submissions_total", (("outcome", "refused"),))] >= 1
    assert values[("gamescores_api_request_seconds_count",
                   (("method", "POST"), ("status", "202"), ("view", "score-list")))] >= 1


@pytest.mark.django_db
def test_an_unknown_http_method_is_counted_as_other_not_a_new_series(client):
    for method in ("FOOBAR", "BREW"):
        client.generic(method, "/api/tasks/")
    client.options("/api/tasks/")
    methods = {dict(labels).get("method") for name, labels in samples(client.get("/metrics").content.decode())
               if name == "gamescores_api_request_seconds_count"}
    assert {"other", "OPTIONS"} <= methods
    assert not methods & {"FOOBAR", "BREW"}


def test_web_metrics_answer_only_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-me-7f3a"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Token scrape-me-7f3a"}):
        refused = client.get("/metrics", **headers)
        assert refused.status_code == 401, headers
        assert refused["WWW-Authenticate"].startswith("Bearer")
        assert "METRICS_TOKEN" in refused.json()["detail"]
        assert "gamescores_" not in refused.content.decode()
    scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3a")
    assert scraped.status_code == 200
    assert "gamescores_api_request_seconds" in scraped.content.decode()


def test_consumer_metrics_are_scraped_over_http(table, start_consumer):
    submission = Submission(id=str(uuid.uuid4()), player_id="m1", player_name="M", task="warm-up-sums",
                            submitted_at=datetime.now(UTC))
    store.score_put(submission=submission)
    port = free_port()
    consumer = start_consumer("--metrics-port", str(port), "--metrics-addr", "127.0.0.1")

    def scraped_all():
        values = samples(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode())
        # Wait for every metric asserted below, not only the first: the
        # records counter goes up inside the batch, while the iterator-age
        # gauge is set only after the reader's whole pass (lease renewal,
        # checkpoint write) returns, so a scrape can fall in between.
        complete = (values.get(("gamescores_consumer_records_total", (("result", "applied"),)), 0) >= 1
                    and values.get(("gamescores_consumer_batch_seconds_count", ()), 0) >= 1
                    and any(name == "gamescores_consumer_iterator_age_seconds" for name, _ in values))
        return values if complete else None

    values = wait_until(scraped_all, timeout=30, interval=0.3, ignoring=(OSError,),
                        message=lambda: open(consumer.log_path).read()[-2000:])
    assert values[("gamescores_consumer_records_total", (("result", "applied"),))] >= 1
    assert values[("gamescores_consumer_batch_seconds_count", ())] >= 1
    assert any(name == "gamescores_consumer_iterator_age_seconds" for name, _ in values)


def test_production_refuses_metrics_without_a_token(client, settings):
    from tests.test_config import manage

    shown = manage("shell", "-c", "from django.conf import settings; print(settings.METRICS_OPEN)",
                   DJANGO_SETTINGS_MODULE="gameapp.settings.production", ALLOWED_HOSTS="scores.example.com",
                   SECRET_KEY="a-real-secret-for-the-metrics-check-0123456789-abcdefghijklm")
    assert shown.returncode == 0 and shown.stdout.split()[-1] == "False", shown.stderr  # production's default
    settings.METRICS_TOKEN, settings.METRICS_OPEN = "", False
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert "set METRICS_TOKEN" in refused.json()["detail"] and b"gamescores_" not in refused.content


def test_several_web_processes_are_scraped_as_one_in_multiprocess_mode(tmp_path):
    """Under gunicorn -w 2 a scrape reaches one worker: with
    PROMETHEUS_MULTIPROC_DIR it must report every worker's counts."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "gameapp.settings.test"}
    count = ("import django; django.setup(); from scoring.metrics import SUBMISSIONS; "
             "[SUBMISSIONS.labels('accepted').inc() for _ in range({})]")
    for times in (5, 3):  # two worker processes, one after the other
        subprocess.run([sys.executable, "-c", count.format(times)], env=env, check=True, cwd=ROOT, timeout=60)
    scrape = ("import django; django.setup(); from django.test import RequestFactory; "
              "from scoring.metrics import metrics_view; "
              "print(metrics_view(RequestFactory().get('/metrics')).content.decode())")
    scraped = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, cwd=ROOT, timeout=60,
                             capture_output=True, text=True).stdout
    assert samples(scraped)[("gamescores_submissions_total", (("outcome", "accepted"),))] == 8


@pytest.mark.django_db
def test_prometheus_scrapes_by_ip_when_allowed_hosts_is_a_name(client, settings):
    settings.ALLOWED_HOSTS = ["scores.example.com"]
    settings.METRICS_TOKEN = "s3cret-token"
    by_ip = {"HTTP_HOST": "10.0.3.17:8000"}
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", **by_ip)
    assert response.status_code == 200 and b"gamescores_" in response.content
    assert client.get("/metrics", **by_ip).status_code == 401  # the token still applies


def test_submission_counters_exist_at_zero_from_start_up():
    # A fresh process: the alert's increase() needs both series before the
    # first submission, or it misses that submission.
    out = subprocess.run([sys.executable, "-c", "import django; django.setup(); "
                          "from prometheus_client import generate_latest; import scoring.metrics; "
                          "print(generate_latest().decode())"], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "gameapp.settings.test"}).stdout
    values = samples(out)
    assert values[("gamescores_submissions_total", (("outcome", "accepted"),))] == 0
    assert values[("gamescores_submissions_total", (("outcome", "refused"),))] == 0
