"""Prometheus metrics for the web and the stream consumer.

Each process keeps its own registry: the web serves it at ``/metrics``; the
consumer, at ``--metrics-port``. Under a server with several worker
processes (gunicorn ``-w 2``), set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory for the web: each process then writes its metrics there, and
``/metrics`` sums every process's (prometheus_client's multiprocess mode),
whichever process the scrape reaches. Without it, a scrape sees only the
process it reached, and counters seem to jump back and forth.
"""

import hmac
import os
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

API_LATENCY = Histogram(
    "gamescores_api_request_seconds", "API request latency.", ["method", "view", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SUBMISSIONS = Counter("gamescores_submissions_total", "Score submissions by outcome at the API.", ["outcome"])
# Both series exist from start-up at 0: increase() over a series born at its
# first submission misses that submission (the stall alert gates on it).
for _outcome in ("accepted", "refused"):
    SUBMISSIONS.labels(_outcome)
RECORDS = Counter("gamescores_consumer_records_total", "Stream records the consumer handled.", ["result"])
SHARD_LAG = Gauge("gamescores_consumer_iterator_age_seconds",
                  "Now minus the last record's ApproximateCreationDateTime, per shard (IteratorAge).", ["shard"])
TOTALS_READ = Counter("gamescores_consumer_totals_read_total",
                      "TOTAL items the consumer's batches started from, by where they came from: the TOTALs "
                      "it wrote itself (cache) or DynamoDB (table).", ["source"])
BATCH_SECONDS = Histogram("gamescores_consumer_batch_seconds", "Time to process one batch.",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SUBMIT_TO_APPLIED = Histogram("gamescores_submit_to_applied_seconds",
                              "From a submission's acceptance at the API to its batch's totals being committed.",
                              buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))
PIPELINE_LAG = Gauge("gamescores_pipeline_lag_seconds",
                     "The latest batch's largest submit -> applied latency: what the boards show as pipeline lag.")
PIPELINE_LAST_BATCH = Gauge("gamescores_pipeline_last_batch_timestamp_seconds",
                            "When this consumer last committed a batch that decided a submission (Unix time).")

# Any token is a valid method to Django: a client sending made-up ones would
# add a series per method.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetricsMiddleware:
    """Times every /api/ request, labelled by view name and method (both bounded)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.url_name if match and match.url_name else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        API_LATENCY.labels(method, view, str(response.status_code)).observe(time.perf_counter() - started)
        if view == "score-list" and request.method == "POST":
            SUBMISSIONS.labels("accepted" if response.status_code in (200, 202) else "refused").inc()
        return response


def metrics_view(request):
    """The web's metrics, for Prometheus; behind a bearer token if
    METRICS_TOKEN is set, refused without one unless METRICS_OPEN."""
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 settings.METRICS_TOKEN.encode()):
            response = JsonResponse({"detail": "Metrics need 'Authorization: Bearer <METRICS_TOKEN>'."}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not settings.METRICS_OPEN:
        return JsonResponse({"detail": "Metrics are off: set METRICS_TOKEN (and give Prometheus the same "
                                       "bearer token), or METRICS_OPEN=1 on a private network."}, status=403)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _registry():
    """Every web process's metrics in multiprocess mode, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
