"""What the web tier asks of DynamoDB is what infra/table.yaml's WebPolicy
lets it do.

Every surface the web serves (the API, the pages, readiness, the staff
pipeline and review pages, Django admin's rules changes) is driven through
Django's test client against a real moto server, and each DynamoDB call it
makes is recorded from botocore's events: the operation, the table or
index, and the partition keys it touches. Each must be allowed by one
statement of the policy, read from the template itself, its
``dynamodb:LeadingKeys`` condition included. moto does not enforce IAM, so
without this a web role missing an action is found in production.
"""

import fnmatch
import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from cfnlint.decode import cfn_yaml
from django.contrib.auth.models import Permission

from scoring import store
from scoring.models import Difficulty, RulesChange
from scoring.store.base import scan_client
from tests.scoring.test_api_play import answer, client_for, honest_seconds, start
from tests.scoring.test_quarantine import process as consumer_processes
from tests.scoring.test_quarantine import put, submission
from tests.scoring.test_rules import play
from tests.scoring.test_rules import process as consumer_processes_catalog
from tests.scoring.test_rules_admin import difficulty_form
from tests.test_infra import TEMPLATE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table", "redis_url")]

TABLE = "table"


def web_policy() -> list[dict]:
    """WebPolicy's Allow statements, each as its actions, its resources
    (``table`` or ``table/index/<name>`` patterns) and its LeadingKeys
    patterns (None: no condition)."""
    template = cfn_yaml.load(str(TEMPLATE))
    statements = []
    for statement in template["Resources"]["WebPolicy"]["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        condition = statement.get("Condition", {})
        assert set(condition) <= {"ForAllValues:StringLike"}, condition
        leading = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        statements.append({"actions": set(actions), "resources": [_resource(r) for r in resources],
                           "leading_keys": leading})
    return statements


def _resource(resource) -> str:
    if resource == {"Fn::GetAtt": ["ScoresTable", "Arn"]}:
        return TABLE
    return resource["Fn::Sub"].replace("${ScoresTable.Arn}", TABLE)


def allowed(call: dict, statements: list[dict]) -> bool:
    resource = TABLE + (f"/index/{call['index']}" if call["index"] else "")
    for statement in statements:
        if f"dynamodb:{call['operation']}" not in statement["actions"]:
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in statement["resources"]):
            continue
        if statement["leading_keys"] is not None and (
                call["keys"] is None
                or not all(any(fnmatch.fnmatchcase(k, p) for p in statement["leading_keys"]) for k in call["keys"])):
            continue
        return True
    return False


def _leading_keys(operation: str, params: dict) -> list[str] | None:
    """The partition keys a call names (None where it names none: a Query's
    is in its expression, a Scan has none)."""
    if operation == "PutItem":
        return [params["Item"]["PK"]["S"]]
    if operation in ("GetItem", "UpdateItem", "DeleteItem"):
        return [params["Key"]["PK"]["S"]]
    if operation == "BatchGetItem":
        return [key["PK"]["S"] for request in params["RequestItems"].values() for key in request["Keys"]]
    if operation == "BatchWriteItem":
        return [(r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"])["PK"]["S"]
                for requests in params["RequestItems"].values() for r in requests]
    return None


@pytest.fixture
def web_calls():
    """A context manager recording the DynamoDB calls made inside it, as
    dicts of operation, index and partition keys."""
    calls: list[dict] = []
    clients = {id(c): c for c in (store.client(), scan_client())}.values()

    def record(params, model, **kwargs):
        calls.append({"operation": model.name, "index": params.get("IndexName"),
                      "keys": _leading_keys(model.name, params)})

    @contextmanager
    def recording():
        for client in clients:
            client.meta.events.register("before-parameter-build.dynamodb", record, unique_id="web-role")
        try:
            yield calls
        finally:
            for client in clients:
                client.meta.events.unregister("before-parameter-build.dynamodb", unique_id="web-role")

    return recording


def test_the_policy_refuses_what_it_does_not_list():
    """The checker itself: it can say no."""
    statements = web_policy()
    assert allowed({"operation": "PutItem", "index": None, "keys": ["SCORE#x"]}, statements)
    assert not allowed({"operation": "PutItem", "index": None, "keys": ["TOTAL#p1"]}, statements)
    assert not allowed({"operation": "UpdateItem", "index": None, "keys": ["SCORE#x"]}, statements)
    assert not allowed({"operation": "DeleteItem", "index": None, "keys": ["SCORE#x"]}, statements)
    assert not allowed({"operation": "Query", "index": "GSI9", "keys": None}, statements)


def test_every_dynamodb_call_the_web_makes_is_one_its_role_allows(
        web_calls, client, admin_client, player, other_player, clock):
    # What the consumer made before the web is asked anything (not recorded):
    # totals on the boards, a rejected submission, four held ones, and a
    # worker dead for two hours, still in the registry.
    consumer_processes_catalog([play(1, 0, "big-products"), play(2, 0, "warm-up-sums")])
    consumer_processes(put(submission(100, player="p3", task="gone")))
    consumer_processes(put(*[submission(n, player="p4", elapsed_ms=10_000 + n) for n in range(7)]))
    held = [s.id for s in store.held_list(limit=10)]
    long_ago = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)
    store.worker_heartbeat(worker_id="gone-worker", ttl_seconds=10, status={}, now_ms=long_ago)
    other_player.user_permissions.add(Permission.objects.get(codename="submit_trusted"))
    player_api, trusted_api = client_for(player), client_for(other_player)
    client.force_login(player)
    hard = Difficulty.objects.get(name="Hard")

    with web_calls() as calls:
        # A player plays: a challenge, a verified submission, its resend.
        challenge = start(player_api)
        clock.advance(honest_seconds())
        accepted = answer(player_api, challenge, HTTP_IDEMPOTENCY_KEY="k1")
        assert accepted.status_code == 202, accepted.content
        clock.advance(1)
        assert answer(player_api, challenge, HTTP_IDEMPOTENCY_KEY="k1").status_code == 200
        submission_id = accepted.json()["id"]
        bare = trusted_api.post("/api/scores/", data=json.dumps({"task": "warm-up-sums"}),
                                content_type="application/json")
        assert bare.status_code == 202, bare.content
        for path in (f"/api/scores/{submission_id}/", "/api/scores/", "/api/players/me/ledger/", "/api/tasks/",
                     "/api/leaderboard/?window=all", "/api/leaderboard/?window=week", "/api/leaderboard/me/",
                     "/api/leaderboard/history/", "/api/activity/"):
            assert player_api.get(path).status_code == 200, path
        for path in ("/", "/play/", "/leaderboard/", "/me/scores/", "/healthz", "/readyz"):
            assert client.get(path).status_code == 200, path
        # Staff: the pipeline page (a dead worker in the registry), a retry,
        # the review queue and a decision.
        assert admin_client.get("/ops/pipeline/").status_code == 200
        assert admin_client.post("/ops/pipeline/retry/p3-s100/").status_code == 302
        assert admin_client.get("/ops/review/").status_code == 200
        decided = admin_client.post("/ops/review/decide/", {"submission": held[:2], "decision": "approve",
                                                            "note": "ok"})
        assert decided.status_code == 302
        # Admin: a retroactive rules change, previewed and applied, and the
        # action that writes what a crash left out.
        change = admin_client.post(f"/admin/scoring/difficulty/{hard.pk}/change/",
                                   difficulty_form(hard, points=60, rules_mode="retroactive", rules_reason="why"))
        preview = admin_client.get(change["Location"])
        assert preview.status_code == 200
        applied = admin_client.post(change["Location"], {"value": "60", "reason": "why",
                                                         "before": preview.context["before"]})
        assert applied.status_code == 302 and RulesChange.objects.get().status == "applied"
        action = admin_client.post("/admin/scoring/ruleschange/", {
            "action": "write_missing_adjustments", "_selected_action": [RulesChange.objects.get().pk]})
        assert action.status_code == 302

    # The surfaces above reached every kind of call the web makes.
    assert {c["operation"] for c in calls} >= {"PutItem", "GetItem", "BatchGetItem", "Query", "Scan"}
    statements = web_policy()
    refused = {(c["operation"], c["index"], tuple(c["keys"] or ())) for c in calls if not allowed(c, statements)}
    assert not refused, f"calls the web's role does not allow (operation, index, partition keys): {sorted(refused)}"
