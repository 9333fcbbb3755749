"""ASGI entry point, served by uvicorn (the image, compose, `make run`) or daphne: HTTP and websockets."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from gameapp import heap
from gameapp.bodylimit import BodySizeLimit

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
        # Bodies past DATA_UPLOAD_MAX_MEMORY_SIZE are refused before Django
        # spools them (gameapp/bodylimit.py).
        "http": BodySizeLimit(django_asgi_app),
        # Origin must be one of ALLOWED_HOSTS: a page on another site cannot
        # open a socket with the player's session cookie.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# What start-up loaded is kept out of the garbage collector's full
# collections: see gameapp/heap.py (the fan-out's sockets are why).
if SERVED:
    heap.freeze_startup()
