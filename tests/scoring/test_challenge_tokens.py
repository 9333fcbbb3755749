"""Challenge tokens: signed, self-contained, refused when tampered or old."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing

from scoring.challenge_tokens import SALT, ChallengeExpired, ChallengeInvalid, challenge_issue, challenge_load

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_token_gives_back_the_challenge_it_was_issued_for():
    token, issued = challenge_issue(player_id="42", task="times-tables", now=NOW)
    loaded = challenge_load(token=token, max_age_seconds=600, now=NOW + timedelta(seconds=30))
    assert loaded == issued
    assert (loaded.player_id, loaded.task, loaded.issued_at) == ("42", "times-tables", NOW)


def test_a_tokens_terms_come_back_as_they_were_issued():
    terms = [3, 4.5, "+-", [1, 9, 2, 9, 2, 9, 2, 9, 2, 9]]
    token, issued = challenge_issue(player_id="42", task="t", now=NOW, terms=terms)
    assert challenge_load(token=token, max_age_seconds=600, now=NOW).terms == terms == issued.terms


def test_the_issue_time_round_trips_at_millisecond_precision():
    now = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)
    token, issued = challenge_issue(player_id="42", task="t", now=now)
    assert issued.issued_at == now.replace(microsecond=123000)
    assert challenge_load(token=token, max_age_seconds=600, now=now) == issued


def test_two_challenges_differ_in_id_and_seed():
    (_, first), (_, second) = (challenge_issue(player_id="42", task="t", now=NOW) for _ in range(2))
    assert first.id != second.id and first.seed != second.seed


def test_a_tampered_token_is_refused():
    token, _ = challenge_issue(player_id="42", task="t", now=NOW)
    payload, _, rest = token.partition(":")
    forged = signing.dumps({"c": "x", "p": "7", "t": "t", "s": 1, "i": 0}, salt=SALT).partition(":")[0]
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), forged + ":" + rest, "", "not-a-token", None):
        with pytest.raises(ChallengeInvalid):
            challenge_load(token=bad, max_age_seconds=600, now=NOW)


def test_a_value_signed_for_another_purpose_is_not_a_challenge():
    other = signing.dumps({"c": "x", "p": "42", "t": "t", "s": 1, "i": 0})  # default salt
    with pytest.raises(ChallengeInvalid):
        challenge_load(token=other, max_age_seconds=600, now=NOW)


def test_a_signed_value_of_the_wrong_shape_is_malformed():
    with pytest.raises(ChallengeInvalid, match="malformed"):
        challenge_load(token=signing.dumps({"c": "x"}, salt=SALT), max_age_seconds=600, now=NOW)


def test_an_old_challenge_has_expired():
    token, _ = challenge_issue(player_id="42", task="t", now=NOW)
    challenge_load(token=token, max_age_seconds=600, now=NOW + timedelta(seconds=600))
    with pytest.raises(ChallengeExpired):
        challenge_load(token=token, max_age_seconds=600, now=NOW + timedelta(seconds=601))


def test_a_rotated_key_still_accepts_open_challenges_while_it_is_a_fallback(settings):
    token, issued = challenge_issue(player_id="42", task="t", now=NOW)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    with pytest.raises(ChallengeInvalid):
        challenge_load(token=token, max_age_seconds=600, now=NOW)
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert challenge_load(token=token, max_age_seconds=600, now=NOW) == issued
