"""WSGI entry point, for servers that speak only HTTP."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.local")

application = get_wsgi_application()
