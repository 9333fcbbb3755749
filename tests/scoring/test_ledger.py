"""GET /api/players/me/ledger/: what a player's total is made of, through a
real moto server: submissions under the rules of their time, and the
adjustments rules changes made, summing to the total."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from rest_framework.test import APIClient

from scoring import rules, store
from scoring.domain import adjustment_id
from scoring.models import RulesChange
from tests.scoring.test_rules import process

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def played(player, n: int, task: str, at: datetime | None = None):
    from scoring.domain import Submission

    return Submission(id=f"{player.pk}-{n}", player_id=str(player.pk), player_name=player.username, task=task,
                      submitted_at=at or T0 + timedelta(minutes=n), verified_by="trusted:test")


@pytest.fixture
def history(player, other_player):
    """Ada: two Hard, one Easy; then Hard re-scored 50 -> 60; then one more
    Hard at 60. Bob: one Hard, which Ada must never see."""
    process([played(player, 0, "big-products"), played(player, 1, "warm-up-sums"),
             played(player, 2, "mental-marathon"), played(other_player, 3, "big-products")])
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="Hard was underpriced", actor="t")
    process(list(store.scores_get_many(submission_ids=[
        adjustment_id(rules_change=change.pk, player_id=str(p.pk)) for p in (player, other_player)]).values()))
    process([played(player, 4, "big-products", at=datetime.now(UTC))])
    return change


def ledger(client, url="/api/players/me/ledger/", **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_ledger_explains_the_total(player_client, player, history):
    page = ledger(player_client)
    total = store.totals_get_many(player_ids=[str(player.pk)])[str(player.pk)].total
    assert page["total"] == total == 50 + 10 + 50 + 20 + 60
    assert sum(e["points"] for e in page["results"]) == total
    assert [e["kind"] for e in page["results"]] == ["submission", "adjustment", "submission", "submission",
                                                   "submission"]
    newest, adjustment = page["results"][0], page["results"][1]
    assert newest["balance"] == total
    assert (newest["task"], newest["difficulty"], newest["points"], newest["rules_version"]) == (
        "big-products", "Hard", 60, history.pk)
    assert newest["submitted_at"] and newest["applied_at"]
    assert (adjustment["rules_change"], adjustment["points"], adjustment["reason"]) == (
        history.pk, 20, "Hard was underpriced")
    assert adjustment["summary"] == "Hard re-scored 50 → 60"
    oldest = page["results"][-1]
    assert (oldest["task"], oldest["points"], oldest["rules_version"], oldest["balance"]) == ("big-products", 50, 0, 50)
    # Each balance is the one before it plus the entry's points.
    for newer, older in zip(page["results"], page["results"][1:], strict=False):
        assert newer["balance"] == older["balance"] + newer["points"]


def test_pages_carry_the_running_balance_and_never_another_players_entries(player_client, player, other_player,
                                                                          history):
    seen = []
    page = ledger(player_client, limit=2)
    while True:
        assert len(page["results"]) <= 2
        seen += page["results"]
        if not page["next"]:
            break
        page = ledger(player_client, page["next"])
    assert len(seen) == 5
    assert sum(e["points"] for e in seen) == seen[0]["balance"] == page["total"]
    assert seen[-1]["balance"] == seen[-1]["points"]
    bob = APIClient()
    bob.force_authenticate(other_player)
    bobs = ledger(bob)
    assert [e["points"] for e in bobs["results"]] == [10, 50] and bobs["total"] == 60
    assert not {e["id"] for e in bobs["results"]} & {e["id"] for e in seen}


@pytest.mark.parametrize("cursor", ["nonsense", "a" * 40, "eyJrIjp7fX0:1tZ:abc"])
def test_a_bad_cursor_is_a_404(player_client, history, cursor):
    response = player_client.get("/api/players/me/ledger/", {"cursor": cursor})
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor."


def test_another_players_cursor_and_a_submissions_cursor_are_404s(player_client, other_player, history):
    bob = APIClient()
    bob.force_authenticate(other_player)
    bobs_next = ledger(bob, limit=1)["next"]
    assert player_client.get(bobs_next).status_code == 404
    submissions_next = player_client.get("/api/scores/", {"limit": 1}).json()["next"]
    cursor = parse_qs(urlsplit(submissions_next).query)["cursor"][0]
    assert player_client.get("/api/players/me/ledger/", {"cursor": cursor}).status_code == 404


def test_the_submissions_list_leaves_adjustments_out(player_client, history):
    listed = player_client.get("/api/scores/", {"limit": 100}).json()["results"]
    assert len(listed) == 4 and all(s["task"] for s in listed)


def test_the_ledger_needs_a_login(api_client, history):
    assert api_client.get("/api/players/me/ledger/").status_code in (401, 403)


def test_the_schema_documents_the_ledger(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/players/me/ledger/"]["get"]
    assert operation["operationId"] == "ledger_list"
    assert {"200", "404"} <= set(operation["responses"])
