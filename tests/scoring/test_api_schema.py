"""Property-based checks of the whole API from its OpenAPI schema (schemathesis).

Whatever the generated input, no response may be a 5xx, and every response
must be JSON.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

MAX_EXAMPLES = 25


@pytest.fixture
def api_schema(table, redis_url, db, player, settings):
    from gameapp.wsgi import application

    settings.SCORE_SUBMIT_RATE = "100000/minute"
    # As Django's test Client does: keep the test's transaction open across
    # requests made straight through the WSGI handler.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case, player):
    token = Token.objects.get_or_create(user=player)[0].key
    response = case.call(headers={"Authorization": f"Token {token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
    content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), response.headers
