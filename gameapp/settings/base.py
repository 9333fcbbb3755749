"""Settings shared by every environment. Values come from the environment.

README.md's configuration table lists every variable; ``.env.example`` holds
the ones a local run sets. ``local``, ``test`` and ``production`` layer on
top of this module.
"""

import logging
from pathlib import Path

from gameapp import config
from scoring.stream import filters

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# The development default, public in this file: production refuses it.
INSECURE_SECRET_KEY = "django-insecure-local-only-key"
SECRET_KEY = config.get_str("SECRET_KEY", INSECURE_SECRET_KEY)
# Old keys still accepted when verifying signatures (challenges, sessions,
# cursors) while a rotation settles: docs/security.md.
SECRET_KEY_FALLBACKS = config.get_list("SECRET_KEY_FALLBACKS", [])
DEBUG = config.get_bool("DEBUG", False)
ALLOWED_HOSTS = config.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_ratelimit",
    "scoring",
]

MIDDLEWARE = [
    # First: health probes come by IP, before any host validation (scoring/health.py).
    "scoring.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app server itself, under uvicorn too (no nginx needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # CommonMiddleware, with JSON 404s and no slash redirects under /api/.
    "scoring.middleware.ApiCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "scoring.metrics.ApiMetricsMiddleware",
]

ROOT_URLCONF = "gameapp.urls"
WSGI_APPLICATION = "gameapp.wsgi.application"
ASGI_APPLICATION = "gameapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": config.get_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Reuse connections across requests: opening one per request was a tenth of
# the submit path's CPU in bench/api_submit.py.
DATABASES["default"]["CONN_MAX_AGE"] = config.get_int("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# With DEBUG on, serve straight from the apps' static folders (no collectstatic);
# production serves the collected, compressed, hashed files.
WHITENOISE_USE_FINDERS = DEBUG

# --- DynamoDB -------------------------------------------------------------
DYNAMODB_TABLE = config.get_table_name("DYNAMODB_TABLE", "gamescores")
# Unset means real AWS; locally it points at the embedded moto server.
DYNAMODB_ENDPOINT_URL = config.get_url("DYNAMODB_ENDPOINT_URL", None, schemes=("http", "https"))
# EventBridge (EVENT_BUS_NAME) and SQS (STREAM_ON_FAILURE_SQS_URL) at the
# DynamoDB endpoint unless set: moto serves every service on one port.
# DynamoDB Local does not, nor does a DynamoDB VPC endpoint: set these then.
EVENTBRIDGE_ENDPOINT_URL = config.get_url("EVENTBRIDGE_ENDPOINT_URL", None, schemes=("http", "https"))
SQS_ENDPOINT_URL = config.get_url("SQS_ENDPOINT_URL", None, schemes=("http", "https"))
AWS_REGION = config.get_region("AWS_REGION", "us-east-1")
# The API must answer fast even when DynamoDB does not: short timeouts and a
# bounded number of attempts (botocore "standard" retry mode adds jitter).
DYNAMODB_MAX_ATTEMPTS = config.get_int("DYNAMODB_MAX_ATTEMPTS", 3, minimum=1)
DYNAMODB_CONNECT_TIMEOUT = config.get_float("DYNAMODB_CONNECT_TIMEOUT", 1.0, minimum=0.1)
DYNAMODB_READ_TIMEOUT = config.get_float("DYNAMODB_READ_TIMEOUT", 2.0, minimum=0.1)
# The leaderboard index (GSI1) spreads TOTAL items over this many partitions,
# each good for about 1,000 writes a second. The same value everywhere;
# changing it needs `manage.py migrate_leaderboard_index` (docs/data-model.md).
LEADERBOARD_INDEX_SHARDS = config.get_int("LEADERBOARD_INDEX_SHARDS", 10, minimum=1)
# Full scans of the TOTAL items (rebuild_leaderboard, rebuild_totals, rules
# changes) read this many segments in parallel, one thread each: at most 64,
# the connections the DynamoDB client keeps (scoring.store.SCAN_SEGMENTS_MAX).
TOTALS_SCAN_SEGMENTS = config.get_int("TOTALS_SCAN_SEGMENTS", 4, minimum=1, maximum=64)

# --- Stream consumer (manage.py consume_scores) -----------------------------
# The same knobs as a Lambda event source mapping, with the same meaning.
# A batch is at most STREAM_BATCH_SIZE records (1 to 10,000, as BatchSize),
# gathered from GetRecords pages while the shard has a backlog; at the tip
# it is what one read finds, so a large size costs no latency. Lambda's
# default is 100; under a backlog 10,000 folds far more submissions into
# each TOTAL write (docs/benchmarks.md, bench/consumer.py).
STREAM_BATCH_SIZE = config.get_int("STREAM_BATCH_SIZE", 10_000, minimum=1, maximum=10_000)
STREAM_BATCHING_WINDOW = config.get_float("STREAM_BATCHING_WINDOW", 0.0)  # MaximumBatchingWindowInSeconds
STREAM_MAX_RETRY_ATTEMPTS = config.get_int("STREAM_MAX_RETRY_ATTEMPTS", 3, minimum=-1)  # -1: forever
STREAM_MAX_RECORD_AGE = config.get_int("STREAM_MAX_RECORD_AGE", -1, minimum=-1)  # seconds; -1: no limit
STREAM_BISECT_ON_ERROR = config.get_bool("STREAM_BISECT_ON_ERROR", True)
# A batch writes its players' TOTALs this many at a time (each on its own
# key, each its own version-checked write).
STREAM_TOTAL_WRITERS = config.get_int("STREAM_TOTAL_WRITERS", 4, minimum=1)
# TOTAL items a consumer keeps from its own writes, so that its next batches
# need not read them back (while it reads every shard; 0: off). Each holds
# a player's maps: a few KB.
STREAM_TOTALS_CACHE_SIZE = config.get_int("STREAM_TOTALS_CACHE_SIZE", 10_000, minimum=0)
# On-failure destination: an SQS queue URL, or unset for DLQ items in the table.
STREAM_ON_FAILURE_SQS_URL = config.get_url("STREAM_ON_FAILURE_SQS_URL", None, schemes=("http", "https"))
STREAM_STARTING_POSITION = config.get_choice("STREAM_STARTING_POSITION", "TRIM_HORIZON", ("TRIM_HORIZON", "LATEST"))
# FilterCriteria patterns, as a JSON list; the default is the seed's filter.
# Checked here, with the consumer's own parser (a module of pure Python).
STREAM_FILTERS = config.get_json_list("STREAM_FILTERS", [
    {"eventName": ["INSERT"], "dynamodb": {"Keys": {"PK": {"S": [{"prefix": "SCORE#"}]}}}},
], validate=filters.parse_patterns, expected="a JSON list of Lambda FilterCriteria patterns")
# A dead worker's shards are taken over within this many seconds.
STREAM_LEASE_SECONDS = config.get_float("STREAM_LEASE_SECONDS", 10.0, minimum=1.0)
STREAM_POLL_INTERVAL = config.get_float("STREAM_POLL_INTERVAL", 0.25, minimum=0.01)  # 0 would spin on GetRecords

# How long housekeeping items live before DynamoDB's Time to Live deletes them
# (their ``purge_at`` attribute). SCORE and TOTAL items are the ledger: they
# never expire.
DLQ_RETENTION_DAYS = config.get_float("DLQ_RETENTION_DAYS", 14.0, minimum=1.0)  # SQS keeps 14 days at most
REJECTED_RETENTION_DAYS = config.get_float("REJECTED_RETENTION_DAYS", 30.0, minimum=1.0)  # the staff page's list
WORKER_RETENTION_HOURS = config.get_float("WORKER_RETENTION_HOURS", 24.0, minimum=1.0)  # after the last heartbeat
# EventBridge bus for ScoreApplied / ScoreRejected; unset: no events.
EVENT_BUS_NAME = config.get_str("EVENT_BUS_NAME", "") or None

# --- Redis / Channels -----------------------------------------------------
REDIS_URL = config.get_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
# redis-py 8 caps a connection pool at 100 and fails (does not wait) past it;
# a thousand sockets connecting at once each hold one briefly for group_add.
REDIS_MAX_CONNECTIONS = config.get_int("REDIS_MAX_CONNECTIONS", 2000, minimum=10)
# Which Redis channel layer carries pushes to browsers: "pubsub" (the
# default) costs one Redis message per web process for a group_send, "core"
# (channels_redis's list-based layer) one per member socket. bench/fanout.py
# measures both.
CHANNEL_LAYER = config.get_choice("CHANNEL_LAYER", "pubsub", ("pubsub", "core"))
# channels_redis's core layer blocks 5 s per receive (RedisChannelLayer.brpop_timeout).
CHANNEL_LAYER_SOCKET_TIMEOUT = 15.0
if REDIS_URL:
    _channel_layer_host = {"address": REDIS_URL, "max_connections": REDIS_MAX_CONNECTIONS,
                           "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT, "socket_connect_timeout": 5}
    CHANNEL_LAYERS = {
        # Subscriptions are per process; a lost connection to Redis closes
        # the process's sockets, so browsers reconnect and resnapshot
        # (gameapp/channel_layer.py). Its reads poll with a short timeout of
        # their own, so the socket timeout bounds commands only.
        "pubsub": {"BACKEND": "gameapp.channel_layer.RedisPubSubChannelLayer",
                   "CONFIG": {"hosts": [_channel_layer_host]}},
        # redis-py 8 reads with a 5 s socket timeout by default, and the core
        # layer waits for messages with BZPOPMIN of 5 s: an idle socket's read
        # then times out and kills its consumer (redis/redis-py#4091). Read
        # for longer than the pop blocks.
        "core": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [_channel_layer_host]}},
    }
    CHANNEL_LAYERS = {"default": CHANNEL_LAYERS[CHANNEL_LAYER]}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds rate-limit counters (submissions, logins): with Redis they
# are shared by every web process; without it, each process counts alone.
# django-redis keeps one client per process (Django's own RedisCache builds a
# new one for every call: ~0.35 ms more per submission). The limits fail open:
# with Redis down, a submission is still accepted and a login still checked,
# without a limit, and each failed cache call is logged.
SILENCED_SYSTEM_CHECKS = []
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    RATELIMIT_FAIL_OPEN = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # One process: its own counters are the truth.
    SILENCED_SYSTEM_CHECKS += ["django_ratelimit.E003", "django_ratelimit.W001"]

# How many entries a live board shows and pushes (top N).
LEADERBOARD_SIZE = config.get_int("LEADERBOARD_SIZE", 10, minimum=1)
# A batch tells each player it moved past (or that moved past it) of a
# board, up to this many per mover, the nearest first: a jump over 50,000
# players on a big board notifies the nearest few, not all of them.
RANK_CHANGE_NOTIFY_LIMIT = config.get_int("RANK_CHANGE_NOTIFY_LIMIT", 10)
# Every running consumer worker pushes a heartbeat to the boards this often;
# a board with none for PIPELINE_DELAYED_AFTER_SECONDS shows "delayed".
PIPELINE_HEARTBEAT_SECONDS = config.get_float("PIPELINE_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
PIPELINE_DELAYED_AFTER_SECONDS = config.get_float("PIPELINE_DELAYED_AFTER_SECONDS", 30.0, minimum=1.0)

# --- API ------------------------------------------------------------------
SCORE_SUBMIT_RATE = config.get_rate("SCORE_SUBMIT_RATE", "60/minute")
# Challenges a player may start (POST /api/tasks/<slug>/challenges/).
CHALLENGE_RATE = config.get_rate("CHALLENGE_RATE", "120/minute")
# Login attempts (form and /api/token/) per client address, and per username for the API.
LOGIN_RATE = config.get_rate("LOGIN_RATE", "10/minute")
# Accounts created at /signup/ per client address.
SIGNUP_RATE = config.get_rate("SIGNUP_RATE", "10/hour")
# /api/token/ attempts per client address, across usernames (password spraying).
LOGIN_IP_RATE = config.get_rate("LOGIN_IP_RATE", "30/minute")
# Trusted proxies in front of the web (load balancer: 1). The client address
# for every rate limit is then read from X-Forwarded-For (scoring.throttling.
# client_ip); 0 trusts no forwarding header: the address is REMOTE_ADDR.
NUM_PROXIES = config.get_int("NUM_PROXIES", 0)
RATELIMIT_IP_META_KEY = "scoring.throttling.client_ip"
# Largest accepted body for POST /api/scores/; the real payload is ~40 bytes.
SCORE_MAX_BODY_BYTES = config.get_int("SCORE_MAX_BODY_BYTES", 4096, minimum=64)
# No view takes a file. The file parts of a multipart body (a form posted
# with a large "file" field) are read and dropped, never written to a
# temporary file on disk, under any server.
FILE_UPLOAD_HANDLERS: list[str] = []

# How long a challenge (POST /api/tasks/<slug>/challenges/) can be answered.
CHALLENGE_TTL_SECONDS = config.get_float("CHALLENGE_TTL_SECONDS", 900.0, minimum=1.0)

# Quarantine (scoring.domain.hold_decide): the stream processor holds for
# staff review a completion that makes more than SCORE_HOLD_BURST_COUNT by
# one player within SCORE_HOLD_BURST_SECONDS, or that was answered faster
# than its difficulty's review_seconds. SCORE_HOLD_RULES=off turns every
# hold rule off (load tests, scripted demos).
SCORE_HOLD_RULES = config.get_bool("SCORE_HOLD_RULES", True)
SCORE_HOLD_BURST_COUNT = config.get_int("SCORE_HOLD_BURST_COUNT", 30, minimum=1)
SCORE_HOLD_BURST_SECONDS = config.get_float("SCORE_HOLD_BURST_SECONDS", 600.0, minimum=1.0)

# How long each process trusts its snapshot of the active task catalog.
TASK_CACHE_SECONDS = config.get_float("TASK_CACHE_SECONDS", 5.0)

# How long each process trusts a token it has checked; 0 turns the cache off.
TOKEN_CACHE_SECONDS = config.get_float("TOKEN_CACHE_SECONDS", 10.0)

# Set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (Prometheus's
# `authorization` scrape option); unset, it is open here and refused (403) in
# production (METRICS_OPEN below).
METRICS_TOKEN = config.get_str("METRICS_TOKEN", "")
# Whether /metrics may answer without a token when none is set.
METRICS_OPEN = True

REST_FRAMEWORK = {
    # Token first so that an unauthenticated request gets 401 with
    # `WWW-Authenticate: Token`, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scoring.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["scoring.api_errors.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scoring.api_errors.exception_handler",
    # For DRF's own get_ident(); its unset default trusts the whole header.
    "NUM_PROXIES": NUM_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Game scoring API",
    "DESCRIPTION": "Submit task completions; scores are applied asynchronously by a DynamoDB Streams consumer.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # drf-spectacular's default hook, then the API's OpenAPI links.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "scoring.api.schema_add_links"],
}

# LOG_FORMAT=json writes one JSON object a line (python-json-logger), for log
# pipelines; the default is plain text for people.
LOG_FORMAT = config.get_choice("LOG_FORMAT", "text", ("text", "json"))
LOG_LEVEL = config.get_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
                 "null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # With LOG_FORMAT=json, the servers' own lines (start-up, access,
        # errors) as JSON too: uvicorn and gunicorn configure these loggers
        # before Django starts, and this replaces their handlers with the
        # console's (so uvicorn's --log-level and --no-access-log no longer
        # apply: LOG_LEVEL does). In text, the servers keep their own.
        **({name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")}
           if LOG_FORMAT == "json" else {}),
        # A request for a host not in ALLOWED_HOSTS (scanners probing by IP)
        # is a 400 to the client, not an error with a traceback for the
        # on-call: as Django's docs suggest, drop it.
        "django.security.DisallowedHost": {"handlers": ["null"], "propagate": False},
    },
}
# Python's warnings (a library's UserWarning at start-up) as log records
# ("py.warnings"), so that a JSON log holds nothing but JSON lines.
logging.captureWarnings(True)
