# Slim image for the web (uvicorn / gunicorn) and the stream consumer.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY gameapp ./gameapp
COPY scoring ./scoring
COPY templates ./templates
COPY manage.py ./
# Runtime dependencies only, at the pinned versions. Static files are
# collected with the production storage, which writes the staticfiles.json
# manifest that production pages look hashed names up in. The key only gets
# the production settings past their SECRET_KEY check for this command: it is
# not in the image's environment, so a container still needs a real one.
# tests/test_dockerfile.py runs this collectstatic command as written here.
RUN pip install -c constraints.txt . \
    && DJANGO_SETTINGS_MODULE=gameapp.settings.production \
       SECRET_KEY=build-only-collectstatic-key-never-used-to-sign-anything-0123456789 \
       python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home /app app \
    && chown -R app /app

USER app
EXPOSE 8000
ENV DJANGO_SETTINGS_MODULE=gameapp.settings.production
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
# uvicorn with uvloop and httptools: HTTP and websockets, with the options of
# gameapp/processes.py's UVICORN_OPTIONS (tests/test_dockerfile.py checks).
CMD ["uvicorn", "--lifespan", "off", "--no-proxy-headers", "--ws-per-message-deflate", "false", \
     "--host", "0.0.0.0", "--port", "8000", "gameapp.asgi:application"]
