"""Local development (`make run`, `manage.py ...`). DEBUG defaults to on
(for this machine only: see below).

A `.env` file in the project root is read first, for convenience; variables
already in the environment win. Other settings modules never read it.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from gameapp import config

_DOTENV = Path(__file__).resolve().parent.parent.parent / ".env"
# DJANGO_READ_DOT_ENV_FILE=0 skips it (as cookiecutter-django names it).
if _DOTENV.is_file() and config.get_bool("DJANGO_READ_DOT_ENV_FILE", True):
    config.env.read_env(str(_DOTENV))

from .base import *  # noqa: E402, F403

# These are the settings manage.py, wsgi.py and asgi.py fall back to. A
# server for other hosts that forgot DJANGO_SETTINGS_MODULE must not show
# tracebacks and settings to anyone (DEBUG), nor sign sessions and
# challenges with the key in this repository: for hosts other than this
# machine DEBUG defaults to off, and the public key is refused. (A
# development server for a phone on your network: set SECRET_KEY, and
# DEBUG=1 if you want it.)
_OTHER_HOSTS = sorted(set(ALLOWED_HOSTS) - {"localhost", "127.0.0.1", "::1", "[::1]"})  # noqa: F405
if _OTHER_HOSTS and SECRET_KEY in ("", INSECURE_SECRET_KEY):  # noqa: F405
    raise ImproperlyConfigured(
        f"The local settings, with the public SECRET_KEY, would serve {', '.join(_OTHER_HOSTS)}: deploy with "
        "DJANGO_SETTINGS_MODULE=gameapp.settings.production; for a development server on your network, set "
        "SECRET_KEY to a key of your own."
    )

DEBUG = config.get_bool("DEBUG", not _OTHER_HOSTS)
WHITENOISE_USE_FINDERS = DEBUG
