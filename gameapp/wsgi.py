"""WSGI entry point, for servers that speak only HTTP."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from gameapp import heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.local")

SERVED = not settings.configured  # by a server process, not imported into one that runs Django already

application = get_wsgi_application()

# Build the DynamoDB client now, in each worker as it starts, rather than in
# the first requests (loading botocore's service model takes a few hundred ms,
# and threads arriving together would each build one).
from scoring import store  # noqa: E402

store.client()

# What start-up loaded is kept out of the garbage collector's full
# collections: see gameapp/heap.py (a worker's requests stalled while one ran).
if SERVED:
    heap.freeze_startup()
