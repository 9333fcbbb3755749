"""ASGI entry point, served by daphne: HTTP and websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.local")

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
