"""ASGI entry point, served by daphne: HTTP now, websockets in the leaderboard issue."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.local")

# Build the Django app first so that models are loaded before anything else
# (routing, consumers) imports them.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
