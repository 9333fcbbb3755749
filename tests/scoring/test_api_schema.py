"""The OpenAPI schema is the API's exact contract, checked by schemathesis.

Every check schemathesis has runs on every response: no 5xx; only documented
statuses, content types and headers; bodies that match their schemas;
requests the schema allows are accepted and requests it forbids are refused.
Requests are made both ways, valid (positive) and invalid (negative), by the
examples, coverage and fuzzing phases per operation; then a stateful run
follows the schema's links, so GET /api/scores/{id}/ is asked for the ids that
POST /api/scores/ just answered, not only for ids that are a 404.

Seeded (and the stateful run derandomized), with no example database: the
same code makes the same requests, run after run.
"""

import itertools

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.authtoken.models import Token

from scoring import store, verification
from scoring.domain import utcnow
from scoring.models import Difficulty, Task

SEED = 20261203
# Per operation and generation mode. The coverage phase adds its boundary
# cases (each limit, each missing or empty value) on top, whatever this says.
MAX_EXAMPLES = 30
# Scenarios of the stateful run, and calls in each at most.
STATEFUL_MAX_EXAMPLES = 40
STATEFUL_MAX_STEPS = 6
TOKEN = "schemathesis-test-token-000000000000000"
TASK = "warm-up-sums"  # in the seeded catalog (migration 0002)
CREDENTIALS = {"username": "ada", "password": "pw-ada-123"}  # the `player` fixture


def name_what_exists(player_id: str):
    def hook(context, case):
        """Positive requests name a task in the catalog, a right password, and
        a challenge the server issued, answered right.

        The schema allows any slug as a task, any string as a password or a
        challenge token, and cannot list the right ones: the catalog is edited
        in the admin, passwords are secret, a token is signed. A slug that is
        not an active task, a wrong password or a forged token is a 400, as it
        should be (test_api_errors, test_api, test_api_play hold those).
        Negative requests keep whatever the schema forbids.
        """
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive:
            return case
        if case.operation.label == "POST /api/tasks/{slug}/challenges/":
            case.path_parameters = {**(case.path_parameters or {}), "slug": TASK}
        if not isinstance(case.body, dict):
            return case
        if case.operation.label == "POST /api/scores/":
            case.body = {**case.body, "task": TASK}
            if "challenge" in case.body:
                issued = verification.challenge_new(player_id=player_id, task=Task.objects.get(slug=TASK),
                                                    now=utcnow())
                case.body.update(challenge=issued.token, answers=[q.answer for q in issued.questions])
        elif case.operation.label == "POST /api/token/":
            case.body = dict(CREDENTIALS)
        return case

    return hook


@pytest.fixture
def api_schema(table, redis_url, db, trusted, settings):
    """The schema against the app, as the `player` fixture: a trusted client
    too, so that both request shapes of POST /api/scores/ can be accepted.
    No challenge has a minimum time here: the hook answers at once."""
    from gameapp.wsgi import application

    player = trusted
    Difficulty.objects.update(min_seconds=0)
    settings.SCORE_SUBMIT_RATE = "100000/minute"
    settings.LOGIN_RATE = settings.LOGIN_IP_RATE = "100000/minute"
    Token.objects.create(user=player, key=TOKEN)
    # As Django's test Client does: keep the test's transaction open across
    # requests made straight through the WSGI handler.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "suppress-health-check": ["all"],
        # The player's token, as the schema's tokenAuth scheme: schemathesis
        # then knows it for auth, and checks that no or a wrong one is a 401.
        "auth": {"openapi": {"tokenAuth": {"api_key": f"Token {TOKEN}"}}},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {"enabled": True},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": STATEFUL_MAX_STEPS},
        },
    })
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=config)
    schema.hook("map_case")(name_what_exists(str(player.pk)))
    yield schema
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    # Its hundreds of submissions and logins stay counted in the rate limits'
    # cache, against a user id the next test's player may well have again.
    cache.clear()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_answers_as_its_schema_says(case):
    case.call_and_validate()


def test_workflows_along_the_links_answer_as_the_schema_says(api_schema, table, settings):
    scenarios = itertools.count()

    class Workflow(api_schema.as_state_machine()):
        # Each scenario on a new, empty table. Hypothesis replays the choices
        # of earlier scenarios to find new ones, and stops (FlakyStrategy-
        # Definition) if the same choices meet different answers, as they
        # would on a table that keeps every earlier scenario's submissions.
        def setup(self):
            settings.DYNAMODB_TABLE = f"{table}-{next(scenarios)}"
            store.table_ensure(name=settings.DYNAMODB_TABLE)
            super().setup()

        def teardown(self):
            super().teardown()
            store.table_delete(name=settings.DYNAMODB_TABLE)

    try:
        Workflow.run(settings=hypothesis.settings(
            max_examples=STATEFUL_MAX_EXAMPLES,
            stateful_step_count=STATEFUL_MAX_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        ))
    finally:
        settings.DYNAMODB_TABLE = table  # the `table` fixture deletes it
