"""ASGI entry point, served by uvicorn (the image, compose, `make run`) or daphne: HTTP and websockets."""

import gc
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.local")

# No persistent database connections under ASGI, as Django's docs say: each
# request's sync code may run in a different thread, so a kept connection is
# not reused but left open until the database drops it. gunicorn (wsgi.py)
# keeps CONN_MAX_AGE. This only works before the settings are loaded; when
# something loaded them first (daphne's runserver; the test suite), it changes
# nothing: start such a launcher with CONN_MAX_AGE=0. uvicorn and daphne load
# this module first.
SERVED = not settings.configured  # by a server process, not imported into one that runs Django already
if SERVED:
    os.environ["CONN_MAX_AGE"] = "0"

# Build the Django app first so that models are loaded before anything else
# (routing, consumers) imports them.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from scoring import store  # noqa: E402
from scoring.routing import websocket_urlpatterns  # noqa: E402

# The DynamoDB client is built at start-up, not in the first requests (see wsgi.py).
store.client()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin must be one of ALLOWED_HOSTS: a page on another site cannot
        # open a socket with the player's session cookie.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# A web process holds thousands of sockets, each with its consumer's tasks and
# futures, and every board update replaces some of them with new ones that
# live until the next update: long enough to reach the oldest generation.
# CPython then ran a full collection every second or two, which at 5,000
# sockets took 0.6-0.9 s each, and the 10,000-socket fan-out p99 was about 1 s
# on an idle machine (0.48 s with this; bench/fanout.py). So what start-up
# loaded is frozen out of full collections, and a full collection waits for
# 1,000 collections of the middle generation instead of 10.
if SERVED:
    gc.freeze()
    gc.set_threshold(*gc.get_threshold()[:2], 1000)
