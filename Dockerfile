# Slim image for the web (daphne / gunicorn) and the stream consumer.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY gameapp ./gameapp
COPY scoring ./scoring
COPY templates ./templates
COPY manage.py ./
# Runtime dependencies only, at the pinned versions.
RUN pip install -c constraints.txt . \
    && DJANGO_SETTINGS_MODULE=gameapp.settings.base SECRET_KEY=collectstatic-only \
       python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home /app app \
    && chown -R app /app

USER app
EXPOSE 8000
ENV DJANGO_SETTINGS_MODULE=gameapp.settings.production
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "gameapp.asgi:application"]
