"""Password guessing is rate limited, on the login form and on /api/token/."""

import time

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from scoring.throttling import CounterRateThrottle, client_ip

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_limits(settings, monkeypatch):
    settings.LOGIN_RATE = "3/hour"
    # The API's counters at the middle of an hourly window: no test straddles two.
    now = time.time() // 3600 * 3600 + 1800
    monkeypatch.setattr(CounterRateThrottle, "timer", staticmethod(lambda: now))
    cache.clear()
    yield
    cache.clear()


def test_login_form_refuses_a_flood_of_guesses(client, player):
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "ada", "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123"})
    assert response.status_code == 429
    assert "Too many login attempts" in response.content.decode()


def test_login_form_still_logs_in_under_the_limit(client, player):
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123"})
    assert response.status_code == 302


def test_token_endpoint_refuses_a_flood_with_429_and_retry_after(api_client, player):
    for _ in range(3):
        response = api_client.post("/api/token/", {"username": "ada", "password": "wrong"}, format="json")
        assert response.status_code == 400
    response = api_client.post("/api/token/", {"username": "ada", "password": "pw-ada-123"}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"]


def wrong_token_request(api_client, username="ada", **headers):
    return api_client.post("/api/token/", {"username": username, "password": "wrong"}, format="json", **headers)


def test_token_limit_ignores_x_forwarded_for_without_trusted_proxies(api_client, player, settings):
    settings.NUM_PROXIES = 0  # the default: the header is the client's to invent
    for i in range(3):
        assert wrong_token_request(api_client, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code == 400
    assert wrong_token_request(api_client, HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == 429


def test_token_limit_behind_one_proxy_keys_on_the_rightmost_forwarded_address(api_client, player, settings):
    settings.NUM_PROXIES = 1
    # The proxy appends the address it saw; the client may prepend anything.
    for i in range(3):
        response = wrong_token_request(api_client, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.5")
        assert response.status_code == 400
    assert wrong_token_request(api_client, HTTP_X_FORWARDED_FOR="10.9.9.99, 203.0.113.5").status_code == 429
    # Another client behind the same proxy (same REMOTE_ADDR) has its own count.
    assert wrong_token_request(api_client, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 400


def test_login_form_behind_one_proxy_counts_each_client_apart(client, player, settings):
    settings.NUM_PROXIES = 1
    guess = {"username": "ada", "password": "wrong"}
    for i in range(3):
        response = client.post("/accounts/login/", guess, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.5")
        assert response.status_code == 200
    assert client.post("/accounts/login/", guess, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert client.post("/accounts/login/", guess, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200


def test_login_form_ignores_x_forwarded_for_without_trusted_proxies(client, player, settings):
    settings.NUM_PROXIES = 0
    guess = {"username": "ada", "password": "wrong"}
    for i in range(3):
        assert client.post("/accounts/login/", guess, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code == 200
    assert client.post("/accounts/login/", guess, HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == 429


def test_token_limit_counts_one_address_spraying_many_usernames(api_client, settings):
    settings.LOGIN_RATE = "100/hour"
    settings.LOGIN_IP_RATE = "3/hour"
    for name in ("ada", "bob", "cy"):
        assert wrong_token_request(api_client, username=name).status_code == 400
    response = wrong_token_request(api_client, username="dee")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(("forwarded", "expected"), [
    ("203.0.113.5", "203.0.113.5"),
    ("10.0.0.1, 203.0.113.5:5555", "203.0.113.5"),  # a proxy that appends the port
    ("[2001:db8::1]:443", "2001:db8::"),
    ("2001:db8::1, 2001:db8:0:0:ffff::2", "2001:db8::"),  # one /64, one client
    ("not-an-address", "192.0.2.1"),  # falls back to the peer
])
def test_client_ip_behind_one_proxy(settings, forwarded, expected):
    settings.NUM_PROXIES = 1
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="192.0.2.1")
    assert client_ip(request) == expected


def test_token_limit_counts_an_ipv6_client_by_its_64(api_client, player, settings):
    settings.NUM_PROXIES = 1
    for i in range(3):
        assert wrong_token_request(api_client, HTTP_X_FORWARDED_FOR=f"2001:db8::{i + 1}").status_code == 400
    assert wrong_token_request(api_client, HTTP_X_FORWARDED_FOR="2001:db8::ffff:9").status_code == 429


def test_production_trusts_one_proxy_by_default():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUM_PROXIES"}
    env.update(DJANGO_SETTINGS_MODULE="gameapp.settings.production", SECRET_KEY="x" * 20 + "abcdefghij" * 4)
    out = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                          "print(settings.NUM_PROXIES, settings.REST_FRAMEWORK['NUM_PROXIES'])"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1"]


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_over_the_limit_a_right_password_and_a_wrong_one_get_the_same_refusal(client, admin_user, path):
    """A refused guess is not checked: the page must not say whether it was right."""
    for _ in range(3):
        assert client.post(path, {"username": "admin", "password": "wrong"}).status_code == 200
    right = client.post(path, {"username": "admin", "password": "password"})
    wrong = client.post(path, {"username": "admin", "password": "wrong"})
    assert right.status_code == wrong.status_code == 429
    assert "Too many login attempts" in right.content.decode()
    assert right.context["form"].errors == wrong.context["form"].errors
    assert client.get("/admin/").status_code == 302  # not logged in


def test_the_login_form_and_admins_login_share_one_allowance(client, admin_user):
    for path in ("/accounts/login/", "/admin/login/", "/accounts/login/"):
        assert client.post(path, {"username": "admin", "password": "wrong"}).status_code == 200
    assert client.post("/admin/login/", {"username": "admin", "password": "password"}).status_code == 429


def test_admin_login_still_logs_in_under_the_limit(client, admin_user):
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "password"})
    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_signup_refuses_a_flood_of_accounts_from_one_address(client, settings, django_user_model):
    settings.SIGNUP_RATE = "2/hour"

    def sign_up(name):
        client.logout()
        return client.post("/signup/", {"username": name, "password1": "a-long-pass-phrase-1",
                                        "password2": "a-long-pass-phrase-1"})

    typo = client.post("/signup/", {"username": "bot0", "password1": "a-long-pass-phrase-1", "password2": "other"})
    assert typo.status_code == 200  # a mistake does not use up the allowance
    assert [sign_up(f"bot{i}").status_code for i in range(2)] == [302, 302]
    refused = sign_up("bot2")
    assert refused.status_code == 429 and "Too many sign-ups" in refused.content.decode()
    assert not django_user_model.objects.filter(username="bot2").exists()
