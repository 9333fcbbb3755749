"""Production: DEBUG off and a real secret key required."""

from django.core.exceptions import ImproperlyConfigured

from gameapp import config

from .base import *  # noqa: F403

DEBUG = config.get_bool("DEBUG", False)
SECRET_KEY = config.get_str("SECRET_KEY")
if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("Setting SECRET_KEY must be a real secret of at least 32 characters in production.")
