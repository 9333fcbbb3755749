"""The test suite. Each test gets its own DynamoDB table on a moto server."""

from .base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# This process's memory, whatever REDIS_URL says: each test empties it
# (tests/conftest.py), which must never flush a Redis someone exported.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Failing fast keeps the "DynamoDB unreachable" tests quick.
DYNAMODB_MAX_ATTEMPTS = 2
DYNAMODB_CONNECT_TIMEOUT = 0.5
DYNAMODB_READ_TIMEOUT = 2.0
TASK_CACHE_SECONDS = 0  # every test sees its own catalog edits at once
TOKEN_CACHE_SECONDS = 0
# Serve static files from the apps' folders, as in development: the suite
# never runs collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
