"""Server-rendered pages for players.

The pages render from the relational catalog only: scores and the live board
reach the browser through the JSON API and the websocket, so a page never
waits on DynamoDB or Redis.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views.generic import CreateView
from django_ratelimit.core import get_usage
from django_ratelimit.decorators import ratelimit

from scoring import selectors
from scoring.domain import WINDOWS

# The websocket route lives in the Channels router, not in Django's urls.
LEADERBOARD_SOCKET_PATH = "/ws/leaderboard/"
# The page's names for the windows; which windows there are, and their order,
# is scoring.domain.WINDOWS. A window without a label fails here, at import.
WINDOW_LABELS = {"all": "All time", "week": "This week", "day": "Today"}
LEADERBOARD_WINDOWS = [(window, WINDOW_LABELS[window]) for window in WINDOWS]


def home(request):
    return render(request, "scoring/home.html", {"tasks": selectors.task_list_active()})


TOO_MANY_LOGINS = "Too many login attempts. Wait a minute and try again."


def _login_rate(group, request) -> str:
    return settings.LOGIN_RATE


def _refuse(form, message: str):
    """``form``, unbound, showing only ``message``: nothing that was posted
    is validated (a refused login guess is not checked, so the page cannot
    tell a right password from a wrong one)."""
    form.cleaned_data = {}  # add_error's bookkeeping; an unbound form has none
    form.add_error(None, message)
    return form


def _signups(request, *, count: bool) -> dict | None:
    """The address's sign-ups this period (django-ratelimit's usage), with
    this one if ``count``; None when the cache cannot say (it fails open)."""
    return get_usage(request, group="signup", key="ip", rate=settings.SIGNUP_RATE, method="POST", increment=count)


class SignupView(CreateView):
    """A new player's account, a bounded number an hour from one address:
    the hold rules bound what one account can score, so accounts must not
    come free by the thousand. Only accounts made count: a typo does not
    use up the address's allowance (a venue may share one address)."""

    form_class = UserCreationForm
    template_name = "registration/signup.html"
    success_url = reverse_lazy("home")

    def post(self, request, *args, **kwargs):
        usage = _signups(request, count=False)
        if usage is not None and usage["count"] >= usage["limit"]:
            self.object = None
            form = _refuse(self.get_form_class()(), "Too many sign-ups from your address. Try again later.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        _signups(self.request, count=True)
        login(self.request, self.object)
        return response


def _viewer(user) -> dict | None:
    """The viewer as the API and the socket name players (see api._player)."""
    if not user.is_authenticated:
        return None
    return {"id": str(user.pk), "name": user.get_full_name() or user.get_username()}


@login_required
def play(request):
    # The page posts with fetch(), which reads the token from the cookie:
    # make sure Django sets it even though the page has no form of its own.
    get_token(request)
    config = {
        "scoresUrl": reverse("score-list"),
        "challengesUrl": reverse("challenge-create", args=["__slug__"]),
        "socketPath": LEADERBOARD_SOCKET_PATH,
    }
    # Grouped by difficulty in the template, which needs each group contiguous
    # even when two difficulties share an ordering.
    tasks = sorted(
        selectors.task_list_active(),
        key=lambda task: (task.difficulty.ordering, task.difficulty.points, task.difficulty.pk, task.title),
    )
    return render(request, "scoring/play.html", {
        "tasks": tasks,
        "player": _viewer(request.user),
        "config": config,
    })


def leaderboard_page(request):
    window = request.GET.get("window", "all")
    if window not in dict(LEADERBOARD_WINDOWS):
        window = "all"
    config = {
        "window": window,
        "limit": settings.LEADERBOARD_SIZE,  # what the socket sends (ranking.size)
        "socketPath": LEADERBOARD_SOCKET_PATH,
        "meUrl": reverse("leaderboard-me"),
        "historyUrl": reverse("leaderboard-history"),
        "activityUrl": reverse("activity"),
        # The page says "delayed" after this long without a heartbeat or delta.
        "delayedAfterSeconds": settings.PIPELINE_DELAYED_AFTER_SECONDS,
    }
    return render(request, "scoring/leaderboard.html", {
        "windows": LEADERBOARD_WINDOWS,
        "window": window,
        "viewer": _viewer(request.user),
        "config": config,
    })


@login_required
def my_scores(request):
    """The player's ledger with a running total, and a chart of their total
    and rank over time; adjustments arrive live over their socket."""
    config = {
        "ledgerUrl": reverse("ledger"),
        "scoresUrl": reverse("score-list"),
        "meUrl": reverse("leaderboard-me"),
        "socketPath": LEADERBOARD_SOCKET_PATH,
    }
    return render(request, "scoring/my_scores.html", {"player": _viewer(request.user), "config": config})


# The login form and admin's login share one count (group): two doors, one
# allowance of guesses per address.
@method_decorator(ratelimit(group="login", key="ip", rate=_login_rate, method="POST", block=False), name="post")
class RateLimitedLoginView(LoginView):
    """Django's login, refusing a flood of password guesses from one address."""

    def post(self, request, *args, **kwargs):
        if getattr(request, "limited", False):
            form = _refuse(self.get_form_class()(request), TOO_MANY_LOGINS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


@ratelimit(group="login", key="ip", rate=_login_rate, method="POST", block=False)
def admin_login(request, extra_context=None):
    """Django admin's own login, under the same limit as /accounts/login/
    (one count for both). Over it, admin's login page is rendered as for a
    GET, its form unbound (the guess is not checked), with a 429."""
    if not getattr(request, "limited", False):
        return admin.site.login(request, extra_context)
    request.method = "GET"
    response = admin.site.login(request, extra_context)
    if isinstance(response, TemplateResponse):
        _refuse(response.context_data["form"], TOO_MANY_LOGINS)
        response.status_code = 429
    return response
