"""One settings module, two profiles chosen by the environment.

* embedded default (no DATABASE_URL / REDIS_URL): SQLite in WAL mode, django-q2's ORM broker and
  channels-lite's SQLite channel layer, so web and worker processes talk with no server running.
* production: DATABASE_URL (PostgreSQL) and REDIS_URL (django-q2 Redis broker + channels-redis).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from kvmcluster.keys import data_dir, install_key, required_key, sqlite_file

BASE_DIR = Path(__file__).resolve().parent.parent
# Holds the SQLite databases and the generated keys: 0700, files 0600 (kvmcluster.keys).
DATA_DIR = data_dir(Path(os.environ.get("KVMCLUSTER_DATA_DIR", BASE_DIR / "var")))

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
PRODUCTION = bool(DATABASE_URL or REDIS_URL)

DEBUG = os.environ.get("KVMCLUSTER_DEBUG", "0" if PRODUCTION else "1") == "1"
# Production takes both keys from the environment and refuses to start without real ones (django-q2
# signs pickled tasks with SECRET_KEY); the embedded profile generates each once per install.
# AUDIT_KEY keys the audit hash chain (HMAC, docs/audit.md); it is separate from SECRET_KEY so rotating
# one never touches the other, and it is never stored in the database.
if PRODUCTION:
    SECRET_KEY = required_key("KVMCLUSTER_SECRET_KEY")
    AUDIT_KEY = required_key("KVMCLUSTER_AUDIT_KEY", distinct_from={"KVMCLUSTER_SECRET_KEY": SECRET_KEY})
else:
    SECRET_KEY = os.environ.get("KVMCLUSTER_SECRET_KEY") or install_key(DATA_DIR / "secret.key")
    AUDIT_KEY = os.environ.get("KVMCLUSTER_AUDIT_KEY") or install_key(DATA_DIR / "audit.key")
ALLOWED_HOSTS = os.environ.get("KVMCLUSTER_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_q",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "hosts",
    "migrations_app",
    "notifications",
]
if not PRODUCTION:
    INSTALLED_APPS.append("channels_lite")
# `manage.py lab` (docs/lab.md): a development and test tool, installed in the embedded profile; a
# deployment with DATABASE_URL/REDIS_URL gets it only when it asks (KVMCLUSTER_LAB=1). KVMCLUSTER_LAB=0
# leaves it out of the embedded profile too.
LAB = os.environ.get("KVMCLUSTER_LAB", "0" if PRODUCTION else "1") == "1"
if LAB:
    INSTALLED_APPS.append("lab")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kvmcluster.middleware.ContentSecurityPolicyMiddleware",
    "accounts.middleware.HtmxLoginRedirectMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "kvmcluster.urls"
ASGI_APPLICATION = "kvmcluster.asgi.application"
WSGI_APPLICATION = None

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
                "accounts.context_processors.roles",
            ],
            # Project-wide tags live in kvmcluster/, which is not an app: registered by name here.
            "libraries": {"kvm_ui": "kvmcluster.templatetags.kvm_ui"},
        },
    },
]

_SQLITE_INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"


def _sqlite(name: str) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        # Created 0600 before SQLite opens it; SQLite gives its -wal/-shm files the database's mode.
        "NAME": sqlite_file(DATA_DIR / name),
        # WAL lets the web process read while the worker writes; IMMEDIATE avoids the
        # "database is locked" upgrade deadlock between two writers.
        "OPTIONS": {"init_command": _SQLITE_INIT, "transaction_mode": "IMMEDIATE", "timeout": 20},
        "TEST": {"NAME": DATA_DIR / f"test_{name}"},
    }


if DATABASE_URL:
    # conn_health_checks: a connection kept across requests or tasks is pinged before reuse, so a
    # PostgreSQL restart costs one failed statement at most, not every request until conn_max_age ends
    # (docs/deploy.md, "When PostgreSQL or Redis restarts").
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {"default": _sqlite("kvmcluster.sqlite3")}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: a group message is one PUBLISH that each web process fans out to its own
            # sockets. The core layer stores it once per socket and the web process reads each copy back
            # with a Redis round trip: with 200 viewers of one page, p95 delivery 177 ms against 66 ms
            # (bench/fanout.py, docs/benchmarks.md). What pub/sub gives up (a push sent while Redis is
            # away is lost) is in docs/deploy.md, "Redis and the live pages".
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("KVMCLUSTER_CHANNEL_PREFIX", "kvmcluster")},
        }
    }
else:
    DATABASES["channels"] = _sqlite("channels.sqlite3")
    CHANNEL_LAYERS = {
        "default": {
            # channels-lite, woken by its senders (kvmcluster.sqlite_layer): a reader that finds nothing
            # waits for a wake-up (up to 1 s), then pauses `polling_interval` before it looks again.
            "BACKEND": "kvmcluster.sqlite_layer.WakeableSQLiteChannelLayer",
            "CONFIG": {"database": "channels", "expiry": 30, "group_expiry": 3600, "polling_interval": 0.03},
        }
    }
    DATABASE_ROUTERS = ["kvmcluster.dbrouter.ChannelsRouter"]

# django-q2: a migration job must never run twice (docs/architecture.md, "Jobs run once"): one attempt,
# and a retry window far longer than any job's timeout so the broker never re-delivers a task that is
# still running.
Q_CLUSTER = {
    "name": "kvmcluster",
    "workers": int(os.environ.get("KVMCLUSTER_Q_WORKERS", "4")),
    "timeout": 3600,
    "retry": 4000,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    # ORM broker only: how often the idle pusher looks at the queue table. An enqueue wakes it at
    # once (kvmcluster.queue_broker), so this only bounds the wait for a task nobody announced.
    "poll": 0.5,
    "save_limit": 1000,
    "label": "Jobs",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "kvmcluster.queue_broker.WakeableORM"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "topology"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic writes here; a reverse proxy serving them directly needs a directory it may read
# (the data directory is private to the service user): KVMCLUSTER_STATIC_ROOT (docs/deploy.md).
STATIC_ROOT = Path(os.environ.get("KVMCLUSTER_STATIC_ROOT", DATA_DIR / "staticfiles"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if PRODUCTION:
    SESSION_COOKIE_SECURE = os.environ.get("KVMCLUSTER_INSECURE_COOKIES") != "1"
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = 31536000
    SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
# Sign-in throttling (accounts.throttle): failures per (username, IP) in the window -> locked for a while.
LOGIN_MAX_FAILURES = int(os.environ.get("KVMCLUSTER_LOGIN_MAX_FAILURES", "5"))
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
LOGIN_LOCKOUT_SECONDS = 15 * 60

# --- refusals, throttles and proxies (accounts.denials, accounts.throttle) -------------------------
# One auth.denied audit row per (user, path) per window; later refusals are counted into the next row.
DENIAL_AUDIT_WINDOW_SECONDS = int(os.environ.get("KVMCLUSTER_DENIAL_AUDIT_WINDOW", "60"))
# Sign-in throttle buckets (LOGIN_MAX_FAILURES above is the per-account one): the account lock is short,
# the address lock (LOGIN_LOCKOUT_SECONDS) is the main one; names that are no user share one bucket.
LOGIN_ACCOUNT_LOCKOUT_SECONDS = int(os.environ.get("KVMCLUSTER_LOGIN_ACCOUNT_LOCKOUT", "60"))
LOGIN_IP_MAX_FAILURES = int(os.environ.get("KVMCLUSTER_LOGIN_IP_MAX_FAILURES", "10"))
LOGIN_UNKNOWN_MAX_FAILURES = int(os.environ.get("KVMCLUSTER_LOGIN_UNKNOWN_MAX_FAILURES", "50"))
# Reverse proxies whose X-Forwarded-For names the client (comma-separated addresses or networks).
TRUSTED_PROXIES = [p for p in os.environ.get("KVMCLUSTER_TRUSTED_PROXIES", "").split(",") if p.strip()]
# A trusted proxy also says whether the browser's side was https (it ends TLS and talks http to us), so
# secure cookies, HSTS and the CSRF origin check see the request as the browser made it (docs/deploy.md).
# Django reads this header from any peer: the web processes listen on loopback behind that proxy.
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("KVMCLUSTER_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
# The counters live in the cache: Redis in production (shared by every process, atomic incr),
# per-process local memory in the embedded profile.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("KVMCLUSTER_CHANNEL_PREFIX", "kvmcluster"),
        }
    }
    CACHES["load"] = CACHES["default"]
else:
    # The load rounds' previous counters and cadence markers (hosts.services.load_history) must outlive
    # the worker process that wrote them: the watcher's next 10 s chunk may run in another worker. Files
    # in the data directory, shared by the embedded profile's processes (locmem lost the baseline, so
    # most rounds had no CPU figure). One writer at a time: the watcher holds its lease.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "load": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "load-cache"),
        },
    }

# --- kvmcluster's own knobs -----------------------------------------------------------------------
# Where the local two-host lab keeps its state (lab/).
KVMLAB_DIR = Path(os.environ.get("KVMLAB_DIR", "/tmp/kvmlab"))
# The audit chain's head is anchored outside the database (docs/audit.md): a signed line is appended to
# this file every AUDIT_ANCHOR_EVERY rows and by the django-q2 schedule "audit-anchor".
AUDIT_ANCHOR_FILE = Path(os.environ.get("KVMCLUSTER_AUDIT_ANCHOR_FILE", DATA_DIR / "audit-anchors.log"))
AUDIT_ANCHOR_EVERY = int(os.environ.get("KVMCLUSTER_AUDIT_ANCHOR_EVERY", "100"))
# Seconds between scheduled inventory refreshes of every hypervisor.
# This worker node's name in leases and on the jobs it runs (kvmcluster.workers; docs/deploy.md, "Adding a
# worker node"). Empty: the machine's host name.
WORKER_NAME = os.environ.get("KVMCLUSTER_WORKER_NAME", "")
INVENTORY_REFRESH_SECONDS = int(os.environ.get("KVMCLUSTER_REFRESH_SECONDS", "5"))
# Failure detection (docs/ha.md): a host libvirt does not answer is suspect; it is failed once this long
# has passed with no answer *and* no renewal of its lease in the sanlock lockspace HA_LOCKSPACE
# ("<lockspace name>:<path of the lockspace file>", readable from this machine; empty: no second signal,
# so no host is ever declared failed on its own). Default: sanlock's dead-host time at its default io timeout
# of 10 s (8 x 10 + 60 s): a failed host's leases are free then, so the restart starts at once. Shorter, the
# restart only waits inside sanlock, and libvirt on the target (and the watcher asking it) waits with it.
HA_GRACE_SECONDS = int(os.environ.get("KVMCLUSTER_HA_GRACE_SECONDS", "140"))
HA_LOCKSPACE = os.environ.get("KVMCLUSTER_HA_LOCKSPACE", "")
# How long a recovery keeps retrying a guest whose lease another host still holds (sanlock frees a dead
# host's leases once it is dead to it: 8 x io timeout plus the renewal window), before reporting it.
HA_LEASE_WAIT_SECONDS = int(os.environ.get("KVMCLUSTER_HA_LEASE_WAIT_SECONDS", "300"))
# Seconds a libvirt connect or call may take before the host counts as unreachable.
# The REST API (/api/v1/, kvmcluster/api/): the browser's session or a knox token (stored hashed,
# expiring), cursor pagination, problem documents for errors, the schema by drf-spectacular.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "kvmcluster.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["kvmcluster.api.permissions.RolePermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "kvmcluster.api.pagination.NewestFirst",
    "EXCEPTION_HANDLER": "kvmcluster.api.problems.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
REST_KNOX = {"TOKEN_TTL": timedelta(days=int(os.environ.get("KVMCLUSTER_API_TOKEN_DAYS", "90"))), "AUTO_REFRESH": False}
SPECTACULAR_SETTINGS = {
    "TITLE": "kvmcluster API",
    "DESCRIPTION": "The dashboard's REST API: the same services and role rules as the pages.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "kvmcluster.api.schema_hooks.drop_database_integer_bounds",
    ],
    "ENUM_NAME_OVERRIDES": {
        "MigrationStateEnum": "migrations_app.choices.State",
        "HypervisorStateEnum": "hosts.models.Hypervisor.State",
        "MigrationKindEnum": "migrations_app.choices.Kind",
        "OperationKindEnum": "migrations_app.choices.OperationKind",
        "OperationStateEnum": "migrations_app.choices.OperationState",
    },
}

# /metrics (kvmcluster/metrics.py): a bearer token, or client addresses allowed without one.
KVMCLUSTER_METRICS_TOKEN = os.environ.get("KVMCLUSTER_METRICS_TOKEN", "")
KVMCLUSTER_METRICS_ALLOW = [
    n.strip() for n in os.environ.get("KVMCLUSTER_METRICS_ALLOW", "127.0.0.0/8,::1/128").split(",") if n.strip()
]

# Notifications (docs/notifications.md): networks webhooks may be sent to although they are not public
# (loopback, private, link-local, ... are refused otherwise), and the SMTP server email goes through.
KVMCLUSTER_WEBHOOK_ALLOW = [n.strip() for n in os.environ.get("KVMCLUSTER_WEBHOOK_ALLOW", "").split(",") if n.strip()]
EMAIL_BACKEND = os.environ.get("KVMCLUSTER_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("KVMCLUSTER_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("KVMCLUSTER_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("KVMCLUSTER_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("KVMCLUSTER_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("KVMCLUSTER_EMAIL_STARTTLS", "0") == "1"
EMAIL_USE_SSL = os.environ.get("KVMCLUSTER_EMAIL_SSL", "0") == "1"
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = os.environ.get("KVMCLUSTER_EMAIL_FROM", "kvmcluster@localhost")

LIBVIRT_TIMEOUT_SECONDS = float(os.environ.get("KVMCLUSTER_LIBVIRT_TIMEOUT", "5"))
# Which libvirt URIs may be opened (hosts/drivers/uri.py). libvirt's test driver reads files named in
# its URI, so it is for the test suite only; extra ports beyond libvirt's defaults (16509 tcp, 16514
# tls, 22 ssh) and a directory for ssh keys / TLS client certificates are an admin's choice.
KVMCLUSTER_ALLOW_TEST_URIS = os.environ.get("KVMCLUSTER_ALLOW_TEST_URIS", "0") == "1"
KVMCLUSTER_LIBVIRT_PORTS = [int(p) for p in os.environ.get("KVMCLUSTER_LIBVIRT_PORTS", "").split(",") if p.strip()]
KVMCLUSTER_LIBVIRT_KEY_DIR = os.environ.get("KVMCLUSTER_LIBVIRT_KEY_DIR", "")
# Concurrent guest migrations per hypervisor, each direction.
MIGRATION_MAX_OUTGOING = int(os.environ.get("KVMCLUSTER_MAX_OUTGOING", "1"))
MIGRATION_MAX_INCOMING = int(os.environ.get("KVMCLUSTER_MAX_INCOMING", "1"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KVMCLUSTER_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}},
}
