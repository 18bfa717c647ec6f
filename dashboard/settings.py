"""Parley settings: one module, driven by environment variables.

With nothing set it runs embedded (SQLite, in-memory channel layer, local-memory cache,
Celery on a `filesystem://` broker under ./var). Production (DEBUG=0) refuses to start while
any secret still has its development default.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE as _csp_nonce
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
DEV_LIVEKIT_SECRET = "secret"

DEBUG = envbool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY") or DEV_SECRET_KEY
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# Absolute base of links Parley hands out (join_url, host_url, emails). Empty: derived from
# the request that asked.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "conferences",
    "branding",
    "dashboard",
]

MIDDLEWARE = [
    "conferences.middleware.RequestIDMiddleware",
    # A tenant's verified custom domain serves its join pages (before any host check).
    "branding.middleware.CustomDomainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy, Permissions-Policy, no-store on API answers (parley/headers.py).
    "parley.headers.SecurityHeadersMiddleware",
    # Static files are served before Django by parley.asgi.StaticFiles (WhiteNoise's file
    # table, outside this chain): WhiteNoise's middleware is sync-only and made every request
    # switch threads.
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "conferences.middleware.ApiExceptionMiddleware",
]

# The join-token routes (API-key authenticated, never a cookie) run through a second Django
# handler with only these (parley.asgi.LeanRoutes); same URLconf and views.
LEAN_MIDDLEWARE = [
    "conferences.middleware.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Token answers are never cached (no-store) and carry the same policy headers.
    "parley.headers.SecurityHeadersMiddleware",
    "conferences.middleware.ApiExceptionMiddleware",
]
LEAN_THREADS = envint("LEAN_THREADS", 4)  # per process (the v1 fast path batches on one of them)
LEAN_PATHS = [
    r"/api/v1/rooms/[^/]+/tokens/?",  # v1 join tokens
    r"/api/rooms/join",  # Interactive Show facade
    r"/api/conferences-public/createToken",  # Callaba facade
]
# The join page and the calls a viewer makes on arrival run on a fixed pool of threads with
# the full chain above, synchronously (parley.pages.PageRoutes): one thread hand-off per
# request instead of a thread per request, so a webinar's join storm queues on the event
# loop instead of exhausting the database pool. PAGE_THREADS per process; keep
# LEAN_THREADS + PAGE_THREADS <= DATABASE_POOL_MAX_SIZE.
PAGE_THREADS = envint("PAGE_THREADS", 4)
PAGE_PATHS = [
    r"/room/[A-Za-z0-9-]{1,32}",  # the join page
    r"/room/[A-Za-z0-9-]{1,32}/(?:join|state)",  # its join and state calls
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "dashboard.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool(
    "DATABASE_POOL", True
):
    # Under ASGI every request may run on a new thread: persistent per-thread connections
    # (CONN_MAX_AGE > 0) are never closed there and exhaust PostgreSQL ("too many clients").
    # psycopg's pool (Django 5.2) keeps a bounded set per process instead; each request
    # borrows one and gives it back, so CONN_MAX_AGE must be 0 with it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": envint("DATABASE_POOL_MIN_SIZE", 2),
        "max_size": envint("DATABASE_POOL_MAX_SIZE", 10),
        "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process, the worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
SITE_ID = 1

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS: list[Any] = [BASE_DIR / "static"]
if (BASE_DIR / "node_modules" / "livekit-client" / "dist").is_dir():
    # livekit-client comes from npm (package.json, pinned) and is served as a static file.
    STATICFILES_DIRS.append(
        ("vendor/livekit-client", BASE_DIR / "node_modules" / "livekit-client" / "dist")
    )
if (BASE_DIR / "node_modules" / "hls.js" / "dist").is_dir():
    # hls.js (npm, pinned) for the HLS watch page, in browsers without native HLS.
    STATICFILES_DIRS.append(("vendor/hls.js", BASE_DIR / "node_modules" / "hls.js" / "dist"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = BASE_DIR / "var" / "media"
MEDIA_URL = "media/"

# --- Redis: cache, channel layer, Celery broker -------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
VAR_DIR = Path(os.environ.get("PARLEY_VAR_DIR", BASE_DIR / "var"))

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "parley.cache.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py gives up a read after 5 s by default, the same time channels-redis
            # blocks waiting for messages, so idle websockets died; read for longer.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 10, "max_connections": 1000}]
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    _broker_dir = VAR_DIR / "celery" / "broker"
    _processed_dir = VAR_DIR / "celery" / "processed"
    CELERY_BROKER_URL = "parleyfs://"  # kombu's filesystem broker with atomic writes
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }

# Celery's Django fixup closes the worker's database connection around every task unless
# told to reuse it; reuse it (for up to this many tasks) so starts don't reconnect each time.
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 200)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- LiveKit --------------------------------------------------------------------------------
LIVEKIT_URL = os.environ.get("LIVEKIT_URL") or "ws://127.0.0.1:7880"
# The URL browsers connect to; defaults to LIVEKIT_URL (differs behind proxies or in compose).
LIVEKIT_PUBLIC_URL = os.environ.get("LIVEKIT_PUBLIC_URL", "") or LIVEKIT_URL
LIVEKIT_API_KEY = os.environ.get("LIVEKIT_API_KEY") or "devkey"
LIVEKIT_API_SECRET = os.environ.get("LIVEKIT_API_SECRET") or DEV_LIVEKIT_SECRET
LIVEKIT_TIMEOUT = float(os.environ.get("LIVEKIT_TIMEOUT", "5"))
LIVEKIT_TOKEN_TTL = envint("LIVEKIT_TOKEN_TTL", 600)  # seconds; clients refresh once connected
LIVEKIT_EMPTY_TIMEOUT = envint("LIVEKIT_EMPTY_TIMEOUT", 300)
LIVEKIT_DEPARTURE_TIMEOUT = envint("LIVEKIT_DEPARTURE_TIMEOUT", 20)

# --- Content-Security-Policy (django-csp; parley/headers.py adds this host's websockets and,
# on pages that join LiveKit, LIVEKIT_PUBLIC_URL) ---------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # The tenant's colours come in a <style> with the page's nonce; no inline attributes.
        "style-src": ["'self'", _csp_nonce],
        # Brand logos may be linked by URL (any HTTPS host); previews use data: and blob:.
        "img-src": ["'self'", "data:", "blob:", "https:"],
        # hls.js feeds the player from blob: URLs (Media Source) and runs a blob: worker.
        "media-src": ["'self'", "blob:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["conferences.api.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "conferences.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parley API",
    "DESCRIPTION": "Multi-tenant video rooms on LiveKit. Authenticate with the X-API-Key header.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["conferences.api.v1.urls.schema_without_slash_aliases"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conferences.api.schema_errors.add_error_responses",  # the errors of every operation
    ],
    # One name for the recording layout vocabulary, wherever a serializer offers it.
    "ENUM_NAME_OVERRIDES": {
        "RecordingLayoutEnum": ["grid", "speaker", "single-speaker", "grid+chat"],
    },
}

# --- Accounts (allauth) -------------------------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
LOGIN_REDIRECT_URL = "/dashboard/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
# Optional two-factor sign-in: TOTP authenticator apps, with recovery codes.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = os.environ.get("MFA_TOTP_ISSUER", "Parley")
# Custom-domain verification looks up TXT records; empty: the system's resolvers.
DNS_NAMESERVERS = envlist("DNS_NAMESERVERS", [])
DNS_TIMEOUT = float(os.environ.get("DNS_TIMEOUT", "5"))

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Parley <noreply@localhost>")

# --- Client addresses (parley/clientip.py) ---------------------------------------------------
# Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For is believed. Empty (the
# default): the header is ignored and the peer's address is the client's.
PARLEY_TRUSTED_PROXIES = envlist("PARLEY_TRUSTED_PROXIES", [])
for _proxy in PARLEY_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"PARLEY_TRUSTED_PROXIES: {_proxy!r} is not an address or network"
        ) from None

# --- Product limits -------------------------------------------------------------------------
DEFAULT_TENANT_TIMEZONE = os.environ.get("DEFAULT_TENANT_TIMEZONE", "UTC")
API_RATE_LIMIT_WINDOW = 3600  # seconds; plans state requests per hour
# The token path's per-process copies of API keys and rooms (parley.hotcache): at most this
# old, and dropped in every process as soon as a service changes them. 0 turns it off.
HOT_CACHE_SECONDS = float(os.environ.get("HOT_CACHE_SECONDS", "1"))

# --- Scheduling -----------------------------------------------------------------------------
SCHEDULE_WINDOW_DAYS = envint("SCHEDULE_WINDOW_DAYS", 60)  # occurrences stored this far ahead
SCHEDULE_TICK_SECONDS = float(os.environ.get("SCHEDULE_TICK_SECONDS", "1"))  # dispatcher period
SCHEDULE_LOOKAHEAD_SECONDS = envint("SCHEDULE_LOOKAHEAD_SECONDS", 30)  # queued ahead with an ETA
SCHEDULE_REDISPATCH_SECONDS = envint("SCHEDULE_REDISPATCH_SECONDS", 15)  # lost work re-sent after
# Scheduled bursts: a start at least this far ahead has its LiveKit room pre-created in the
# look-ahead (empty until someone joins; SCHEDULE_START_BATCH rooms to a task) and goes live
# with the others due at the same second in SCHEDULE_START_TASKS transactions run at once
# (0: one on SQLite, whose writers queue anyway, else 4); a nearer start is started alone.
SCHEDULE_PREPARE_SECONDS = envint("SCHEDULE_PREPARE_SECONDS", 3)
SCHEDULE_START_BATCH = envint("SCHEDULE_START_BATCH", 100)
SCHEDULE_START_TASKS = envint("SCHEDULE_START_TASKS", 0)
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-occurrences": {
        "task": "conferences.dispatch",
        "schedule": SCHEDULE_TICK_SECONDS,
        "options": {"expires": SCHEDULE_TICK_SECONDS * 5},
    },
    # Direct calls nobody answered within VIDEOCHAT_RING_SECONDS (conferences.services.calls).
    "expire-call-requests": {
        "task": "conferences.expire_call_requests",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    # Participant-minutes: LiveKit's head counts sampled once a minute (dashboard.usage).
    "meter-usage": {"task": "dashboard.meter_usage", "schedule": 60.0, "options": {"expires": 50}},
}

# --- Recordings and HLS (LiveKit egress) ------------------------------------------------------
# Where recordings land without a tenant S3 target: Parley reads RECORDINGS_DIR; egress writes
# the same folder, which it sees as RECORDINGS_EGRESS_DIR (a shared volume in docker compose).
RECORDINGS_DIR = Path(os.environ.get("RECORDINGS_DIR", VAR_DIR / "recordings"))
RECORDINGS_EGRESS_DIR = os.environ.get("RECORDINGS_EGRESS_DIR", str(RECORDINGS_DIR)).rstrip("/")
# The recording template page is opened by egress, server side: the base URL it reaches
# Parley at, and the LiveKit URL the page connects to from there.
RECORDING_TEMPLATE_BASE_URL = os.environ.get("RECORDING_TEMPLATE_BASE_URL", "").rstrip("/")
RECORDING_TEMPLATE_LIVEKIT_URL = os.environ.get("RECORDING_TEMPLATE_LIVEKIT_URL", "")
RECORDING_URL_TTL = envint("RECORDING_URL_TTL", 3600)  # seconds a download link stays valid
RECORDING_SILENCE_TIMEOUT = envint("RECORDING_SILENCE_TIMEOUT", 600)  # s without egress news
RECORDING_RECONCILE_SECONDS = envint("RECORDING_RECONCILE_SECONDS", 60)
CELERY_BEAT_SCHEDULE["reconcile-recordings"] = {
    "task": "conferences.reconcile_recordings",
    "schedule": float(RECORDING_RECONCILE_SECONDS),
    "options": {"expires": RECORDING_RECONCILE_SECONDS},
}
CELERY_BEAT_SCHEDULE["recording-retention"] = {
    "task": "conferences.enforce_recording_retention",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
# --- Direct calls (/ws/videochat) -----------------------------------------------------------
VIDEOCHAT_RING_SECONDS = envint("VIDEOCHAT_RING_SECONDS", 45)  # unanswered requests expire
VIDEOCHAT_AUTH_SECONDS = envint("VIDEOCHAT_AUTH_SECONDS", 10)  # first-frame auth deadline
VIDEOCHAT_RATE_PER_SECOND = envint("VIDEOCHAT_RATE_PER_SECOND", 10)  # frames per socket
VIDEOCHAT_BURST = envint("VIDEOCHAT_BURST", 30)
# --- Outbound webhooks and attendance (conferences/webhooks_out.py, services/attendance.py) ---
# Deliver to loopback, private, link-local or multicast addresses (tests, local development).
WEBHOOK_ALLOW_PRIVATE_TARGETS = envbool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Accept http:// endpoints (not only https://): by default only in development.
WEBHOOK_ALLOW_HTTP = envbool("WEBHOOK_ALLOW_HTTP", DEBUG)
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "10"))  # seconds per attempt
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "10"))
WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", "3600"))
WEBHOOK_DISABLE_AFTER_HOURS = float(os.environ.get("WEBHOOK_DISABLE_AFTER_HOURS", "24"))
WEBHOOK_LEASE_SECONDS = envint("WEBHOOK_LEASE_SECONDS", 60)  # a killed worker's claim expires
WEBHOOK_SWEEP_SECONDS = float(os.environ.get("WEBHOOK_SWEEP_SECONDS", "5"))
WEBHOOK_QUEUE_ON_COMMIT = True  # queue a delivery task when the event commits (tests: off)
ATTENDANCE_RECONCILE_SECONDS = float(os.environ.get("ATTENDANCE_RECONCILE_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "conferences.webhooks_sweep",
    "schedule": WEBHOOK_SWEEP_SECONDS,
    "options": {"expires": WEBHOOK_SWEEP_SECONDS * 2},
}
CELERY_BEAT_SCHEDULE["attendance-reconcile"] = {
    "task": "conferences.reconcile_attendance",
    "schedule": ATTENDANCE_RECONCILE_SECONDS,
    "options": {"expires": ATTENDANCE_RECONCILE_SECONDS},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # httpx logs every webhook delivery at INFO (with its URL); the attempt log has them.
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}},
}

# --- Production hardening -------------------------------------------------------------------
if not DEBUG:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("Set SECRET_KEY (50+ random characters) when DEBUG=0.")
    if LIVEKIT_API_SECRET == DEV_LIVEKIT_SECRET:
        raise ImproperlyConfigured("Set LIVEKIT_API_SECRET when DEBUG=0.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
