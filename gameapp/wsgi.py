"""WSGI entry point, for servers that speak only HTTP."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.local")

application = get_wsgi_application()

# Build the DynamoDB client now, in each worker as it starts, rather than in
# the first requests (loading botocore's service model takes a few hundred ms,
# and threads arriving together would each build one).
from scoring import store  # noqa: E402

store.client()
