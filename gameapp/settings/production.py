"""Production: DEBUG off, a real secret key, HTTPS everywhere.

`python manage.py check --deploy` is clean with these settings (CI checks it).
"""

from django.core.exceptions import ImproperlyConfigured

from gameapp import config

from .base import *  # noqa: F403

DEBUG = config.get_bool("DEBUG", False)
SECRET_KEY = config.get_str("SECRET_KEY")


def _weak(key: str) -> bool:
    return len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure")


if _weak(SECRET_KEY):
    raise ImproperlyConfigured(
        "Setting SECRET_KEY must be a real secret of at least 50 characters in production (Django's security.W009)."
    )
# An old key still signs what it verifies (sessions, challenges): as strict.
if any(_weak(key) for key in SECRET_KEY_FALLBACKS):  # noqa: F405
    raise ImproperlyConfigured(
        "Setting SECRET_KEY_FALLBACKS must hold only real secrets of at least 50 characters in production."
    )

# Behind a TLS-terminating load balancer that sets X-Forwarded-Proto, and
# appends the client's address to X-Forwarded-For: rate limits count that
# address, not the load balancer's (with 0, one client could use up every
# user's login budget).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
NUM_PROXIES = config.get_int("NUM_PROXIES", 1)
REST_FRAMEWORK = {**REST_FRAMEWORK, "NUM_PROXIES": NUM_PROXIES}  # noqa: F405
SECURE_SSL_REDIRECT = config.get_bool("SECURE_SSL_REDIRECT", True)
# Health checks come from the load balancer over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = config.get_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.get_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = config.get_bool("SECURE_HSTS_PRELOAD", True)  # as cookiecutter-django
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = config.get_list("CSRF_TRUSTED_ORIGINS", [f"https://{host}" for host in ALLOWED_HOSTS])  # noqa: F405

# /metrics without METRICS_TOKEN is refused, not open: it answers by IP, to
# any Host, and over plain HTTP (scoring.health.HealthCheckMiddleware).
METRICS_OPEN = config.get_bool("METRICS_OPEN", False)

# Hashed, compressed static files, collected at build time (Dockerfile).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
