"""Local development (`make run`, `manage.py ...`). DEBUG defaults to on.

A `.env` file in the project root is read first, for convenience; variables
already in the environment win. Other settings modules never read it.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from gameapp import config

_DOTENV = Path(__file__).resolve().parent.parent.parent / ".env"
if _DOTENV.is_file():
    config.env.read_env(str(_DOTENV))

from .base import *  # noqa: E402, F403

DEBUG = config.get_bool("DEBUG", True)
WHITENOISE_USE_FINDERS = DEBUG

# These are the settings manage.py, wsgi.py and asgi.py fall back to. A
# server for other hosts that forgot DJANGO_SETTINGS_MODULE would run with
# DEBUG on and the key above, which anyone can read here and use to sign
# sessions and challenges: refuse to start instead.
_OTHER_HOSTS = sorted(set(ALLOWED_HOSTS) - {"localhost", "127.0.0.1", "::1", "[::1]"})  # noqa: F405
if _OTHER_HOSTS and SECRET_KEY in ("", INSECURE_SECRET_KEY):  # noqa: F405
    raise ImproperlyConfigured(
        f"The local settings, with their public SECRET_KEY, would serve {', '.join(_OTHER_HOSTS)}: deploy with "
        "DJANGO_SETTINGS_MODULE=gameapp.settings.production, or set SECRET_KEY to serve a development server "
        "on your network."
    )
