"""Health endpoints for load balancers and orchestrators.

``/healthz`` is liveness: the process answers. ``/readyz`` is readiness: the
web process can reach DynamoDB and its relational database (users, tokens,
sessions and the catalog live there: without it every API call is a 503).
Redis is checked and reported, but a Redis outage only degrades the web
(submissions go on without rate limits, the week and day boards and the
websockets wait for it), so it answers 200 "degraded": a load balancer that
took every web process out over Redis would turn a partial outage into a
whole one. Each check is one cheap call (a get by key, a PING, a one-row
query; no DescribeTable, no scan), with the store's short timeouts. The
stream consumers' heartbeats are reported too, for information: the web can
serve without them, but scores would stay pending.
"""

import logging
import time

from django.conf import settings
from django.db import connection, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from scoring import ranking, store

logger = logging.getLogger(__name__)

# What the web cannot serve without; the other checks are reported only.
REQUIRED = ("dynamodb", "database")


class HealthCheckMiddleware:
    """Answers exactly ``/healthz``, ``/readyz`` and ``/metrics`` before
    anything reads the Host header. Load balancers, container healthchecks
    and Prometheus reach a process by its IP (``http://10.0.3.17:8000/healthz``),
    which ALLOWED_HOSTS rightly refuses for every other path: first in
    MIDDLEWARE, this never calls ``request.get_host()``. (/metrics keeps its
    own bearer token, METRICS_TOKEN.)"""

    def __init__(self, get_response):
        from scoring.metrics import metrics_view

        self.get_response = get_response
        self.views = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}

    def __call__(self, request):
        view = self.views.get(request.path_info)
        return view(request) if view is not None else self.get_response(request)


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {"dynamodb": _check("dynamodb", _dynamodb), "redis": _check("redis", _redis),
              "database": _check("database", _database)}
    try:
        consumers = len(store.workers_alive())
    except Exception:  # noqa: BLE001 - reported, never fatal here
        consumers = None
    ready = all(checks[name]["ok"] for name in REQUIRED)
    status = "unavailable" if not ready else "ready" if all(c["ok"] for c in checks.values()) else "degraded"
    body = {"status": status, "checks": checks, "workers_alive": consumers}
    return JsonResponse(body, status=200 if ready else 503)


def _dynamodb() -> None:
    store.score_get(submission_id="readiness-probe")


def _redis() -> None:
    if settings.REDIS_URL:
        ranking.client().ping()


def _database() -> None:
    # A table the migrations made, not ``SELECT 1``: a SQLite file gone from
    # under the process opens as a new, empty database that answers
    # ``SELECT 1`` while every real query fails.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")
    except Exception:
        # As the API's 503 does: a connection opened during an outage may
        # never work again, so the next check (and request) opens new ones.
        connections.close_all()
        raise


def _check(name: str, probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        # The page is public: the class name only. The message (endpoints,
        # hosts) goes to the log.
        logger.warning("Readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
