"""Suite settings: one module, driven by environment variables with safe embedded defaults.

Every variable is listed in README.md (Configuration). Defaults run everything on this machine:
SQLite and a filesystem Celery broker under var/, local models under var/models.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ops import env

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = env.env_path("SUITE_VAR_DIR", BASE_DIR / "var", base=BASE_DIR)
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env.secret_key("DJANGO_SECRET_KEY", VAR_DIR / "secret_key")
ALLOWED_HOSTS = env.env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_results",
    "django_celery_beat",
    # platform
    "accounts",
    "access",
    "audit",
    "vault",
    "portal",
    # shared LLM layer
    "inference",
    "inference.tuning",
    # industry apps
    "medical",
    "finance",
    "manufacturing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Session and CSRF by their own names: `check --deploy` looks for them there.
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's authentication and messages middleware, passing API-token calls to /v1 straight
    # through (they authenticate by their token alone: accounts.middleware).
    "accounts.middleware.AuthenticationMiddleware",
    "accounts.middleware.ActingUserMiddleware",  # who made an account change (accounts.trail)
    "accounts.middleware.MessageMiddleware",
    "accounts.middleware.NoStoreMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.ContentSecurityPolicyMiddleware",  # django-csp's, the header built once
    # Last, as django-axes asks: turns a locked-out sign-in into accounts.lockout's 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "suite.urls"
WSGI_APPLICATION = "suite.wsgi.application"
ASGI_APPLICATION = "suite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
                "portal.drafts.submission_states",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------------
DATABASES = {"default": env.database_config("DATABASE_URL", f"sqlite:///{VAR_DIR / 'suite.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE transactions take the write lock up front, so concurrent writers queue
        # instead of failing with "database is locked" half-way through.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so worker and server subprocesses started by tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_suite.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses sign-in for a locked account or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.env_str("SUITE_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = env.env_path("MEDIA_ROOT", VAR_DIR / "media", base=BASE_DIR)
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Tests and `runserver` serve static files straight from the apps (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

MODEL_ROOT = env.env_path("MODEL_ROOT", VAR_DIR / "models", base=BASE_DIR)
# Loaded model weights are kept per process up to this budget (least recently used evicted first).
INFERENCE_MODEL_MEMORY_BUDGET = env.env_bytes("INFERENCE_MODEL_MEMORY_BUDGET", 4 * 2**30)
# Conversation KV caches (multi-turn reuse) are kept up to this budget.
INFERENCE_KV_CACHE_BUDGET = env.env_bytes("INFERENCE_KV_CACHE_BUDGET", 512 * 2**20)
# What a served completion leaves behind besides digests: "encrypted" (sealed by the vault) or "none".
# Intra-op threads of the serving process (0: one per core). On a machine shared by the web
# process and workers, giving each a share avoids oversubscription.
INFERENCE_TORCH_THREADS = env.env_int("INFERENCE_TORCH_THREADS", 0, minimum=0)
# Threads of the llama.cpp engine per generation (0: llama.cpp's default, one per core). On a
# host where web, worker and other jobs share few cores, 1 avoids threads waiting on each other
# (measured in docs/medical.md: QA p50 1.7 s with 1 thread vs 7.6 s with 2 on a loaded 2-core host).
INFERENCE_LLAMACPP_THREADS = env.env_int("INFERENCE_LLAMACPP_THREADS", 0, minimum=0)
# llama.cpp's flash-attention kernel (what llama.cpp's own tools pick on CPU): same perplexity,
# decode about 10% faster on SmolLM2 (docs/inference.md, "Flash attention"). Off: the unfused path.
INFERENCE_LLAMACPP_FLASH_ATTN = env.env_bool("INFERENCE_LLAMACPP_FLASH_ATTN", True)
INFERENCE_STORE_TEXT = env.env_choice("INFERENCE_STORE_TEXT", "encrypted", ["encrypted", "none"])
# The access policy (YAML). A malformed file stops start-up and fails `manage.py check`, naming the line.
# Fine-tuning jobs (read through inference/tuning/conf.py, which documents each one). The two
# folders follow MODEL_ROOT / VAR_DIR unless set.
TUNING_OUTPUT_ROOT = env.env_path("TUNING_OUTPUT_ROOT", None, base=BASE_DIR)
TUNING_DATA_ROOT = env.env_path("TUNING_DATA_ROOT", None, base=BASE_DIR)
TUNING_QUEUE = env.env_str("TUNING_QUEUE", "")  # empty: the long-work queue (SUITE_LONG_QUEUE below)
TUNING_HEARTBEAT_SECONDS = env.env_int("TUNING_HEARTBEAT_SECONDS", 10, minimum=1)
TUNING_HEARTBEAT_STALE_SECONDS = env.env_int("TUNING_HEARTBEAT_STALE_SECONDS", 120, minimum=5)
TUNING_MAX_ATTEMPTS = env.env_int("TUNING_MAX_ATTEMPTS", 3, minimum=1)
TUNING_PROGRESS_SECONDS = env.env_int("TUNING_PROGRESS_SECONDS", 2, minimum=0)
TUNING_QUEUED_RESEND_SECONDS = env.env_int("TUNING_QUEUED_RESEND_SECONDS", 900, minimum=10)

# Medical imaging (read through medical/conf.py, which documents each one).
DICOM_UID_KEY = env.env_str("DICOM_UID_KEY", "")  # empty: a random key sealed by the vault
DICOM_AE_ALLOWLIST = env.env_mapping("DICOM_AE_ALLOWLIST", {"MODALITY1": "radiology", "ECHO1": "cardiology"})
DICOM_SCP_AE_TITLE = env.env_str("DICOM_SCP_AE_TITLE", "SUITE")
# The DICOM node `run_suite` (make run) starts beside the web server; port 0: do not start one.
DICOM_SCP_HOST = env.env_str("DICOM_SCP_HOST", "127.0.0.1")
DICOM_SCP_PORT = env.env_int("DICOM_SCP_PORT", 11112, minimum=0, maximum=65535)
# At most this many associations at once; a peer silent this long is disconnected (medical/scp.py).
DICOM_SCP_MAX_ASSOCIATIONS = env.env_int("DICOM_SCP_MAX_ASSOCIATIONS", 10, minimum=1)
DICOM_SCP_IDLE_SECONDS = env.env_int("DICOM_SCP_IDLE_SECONDS", 30, minimum=1)
MEDICAL_DEID_OPTIONS = env.env_flags("MEDICAL_DEID_OPTIONS", {})
MEDICAL_UPLOAD_MAX_FILE_BYTES = env.env_bytes("MEDICAL_UPLOAD_MAX_FILE_BYTES", 256 * 2**20)
MEDICAL_UPLOAD_MAX_TOTAL_BYTES = env.env_bytes("MEDICAL_UPLOAD_MAX_TOTAL_BYTES", 2**30)
MEDICAL_UPLOAD_MAX_FILES = env.env_int("MEDICAL_UPLOAD_MAX_FILES", 2000, minimum=1)
# The viewer's rendered frames (var/cache/medical-frames): least recently used windows go beyond this.
MEDICAL_FRAME_CACHE_MAX_BYTES = env.env_bytes("MEDICAL_FRAME_CACHE_MAX_BYTES", 2 * 2**30)
# Django refuses more files than this before any view runs (a bare 400); one more than the upload
# limit lets the upload service answer with its own message naming the limit.
DATA_UPLOAD_MAX_NUMBER_FILES = MEDICAL_UPLOAD_MAX_FILES + 1
# 3-D scans (manufacturing.services.scans): a structured-light or laser scanner's shot holds one to a
# few million points; the worker registers 2,000,000 against as many in about 75 s on two cores
# (scripts/scan_cost.py), with 1.3 GB of memory. A plant with a larger worker may raise it.
MANUFACTURING_SCAN_MAX_POINTS = env.env_int("MANUFACTURING_SCAN_MAX_POINTS", 2_000_000, minimum=10)
MANUFACTURING_SCAN_MAX_BYTES = env.env_bytes("MANUFACTURING_SCAN_MAX_BYTES", 200 * 2**20)

ACCESS_POLICY_FILE = env.env_path(
    "ACCESS_POLICY_FILE", BASE_DIR / "platform" / "access" / "policies" / "default.yaml", base=BASE_DIR
)
# Reference data (../shared/data): read by tests, benchmarks and the demo-model corpus; never downloaded.
SHARED_DATA_DIR = env.env_path("SUITE_SHARED_DATA", BASE_DIR.parent / "shared" / "data", base=BASE_DIR)

# Serving metrics (prometheus_client multiprocess mode): every web and worker process writes its
# samples here and one /metrics scrape adds them up. run_suite empties it at start; tests use the
# per-run folder. Outside run_suite (systemd units), empty it before the processes start.
PROMETHEUS_MULTIPROC_DIR = env.env_path("PROMETHEUS_MULTIPROC_DIR", VAR_DIR / "metrics", base=BASE_DIR)

# --- API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated API call then gets 401 with WWW-Authenticate, not 403.
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's own, after writing again a service's denial that its rolled-back transaction took away.
    "EXCEPTION_HANDLER": "access.drf.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "restapi.pagination.StrictLimitOffsetPagination",  # bad limit/offset: 400
    "PAGE_SIZE": 50,
    # Per-address limits on password-guessing endpoints: 429 with Retry-After beyond them.
    # Inference (completions, chat, embeddings, study questions) per user: model time is the scarce resource.
    "DEFAULT_THROTTLE_RATES": {
        "token_issue": env.env_str("SUITE_TOKEN_ISSUE_RATE", "10/min"),
        "inference": env.env_str("SUITE_INFERENCE_RATE", "60/min"),
    },
    # Bodies over SUITE_JSON_MAX_BYTES or nested deeper than SUITE_JSON_MAX_DEPTH: 400 (restapi.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "restapi.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# API tokens hashed at rest (django-rest-knox), expiring; issued and revoked in accounts.tokens.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.env_int("SUITE_API_TOKEN_TTL_DAYS", 30)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Suite API",
    "DESCRIPTION": "On-premise AI for regulated industries.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "suite.openapi.document_error_responses",
    ],
}

# --- Celery ----------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.broker_url("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Long fine-tune jobs: a message must not be redelivered while its task still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60)
    }
CELERY_IMPORTS = ["suite.tasks"]  # project-level tasks; apps are autodiscovered
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env.env_str("CELERY_QUEUE", "suite")
# Long work (fine-tune jobs: hours; training the failure-mode classifier: minutes) has a queue of its own.
# `run_suite` (`make run`) reads it with a worker process of its own with one slot, so training never
# holds the slots that recordings, scans, DICOM previews and screening wait on; a plain `run_worker`
# reads both queues (`--queues` picks).
SUITE_LONG_QUEUE = env.env_str("SUITE_LONG_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}-long")
CELERY_TASK_ROUTES = {"manufacturing.train_failure_classifier": {"queue": SUITE_LONG_QUEUE}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Signed checkpoints of the decision trail (copied into django_celery_beat when beat starts).
AUDIT_CHECKPOINT_MINUTES = env.env_int("AUDIT_CHECKPOINT_MINUTES", 15, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint-trail": {"task": "audit.checkpoint_trail", "schedule": AUDIT_CHECKPOINT_MINUTES * 60.0},
    # Requeue (resume from checkpoint) or fail fine-tune jobs whose worker stopped heart-beating.
    "tuning-reap-jobs": {"task": "tuning.reap_jobs", "schedule": 60.0},
    # Send again the tasks of previews/analyses whose message a broker outage lost (portal.requeue).
    "portal-requeue-pending": {"task": "portal.requeue_pending", "schedule": 60.0},
    # Preventive maintenance plans that fell due by the calendar file their work orders (those due by
    # running hours file as the meter reading arrives).
    "manufacturing-file-due-maintenance": {"task": "manufacturing.file_due_maintenance", "schedule": 3600.0},
}
SUITE_REQUEUE_AFTER_SECONDS = env.env_int("SUITE_REQUEUE_AFTER_SECONDS", 300, minimum=1)
# Key provider for envelope encryption and signing: "local" (files in VAULT_KEY_DIR, 0600) or a dotted path.
VAULT_KEY_PROVIDER = env.env_str("VAULT_KEY_PROVIDER", "local")
VAULT_KEY_DIR = env.env_path("VAULT_KEY_DIR", VAR_DIR / "keys", base=BASE_DIR)
# VAULT_KEY_PROVIDER=vault.pkcs11.Pkcs11KeyProvider: keys in an HSM token found by label (docs/security.md).
VAULT_PKCS11_MODULE = env.env_str("VAULT_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
VAULT_PKCS11_TOKEN_LABEL = env.env_str("VAULT_PKCS11_TOKEN_LABEL", "")
VAULT_PKCS11_PIN = env.env_str("VAULT_PKCS11_PIN", "")  # from the service's environment, never the repo

# --- security --------------------------------------------------------------------------
# Behind a TLS-terminating proxy in production set SUITE_HTTPS=true.
SUITE_HTTPS = env.env_bool("SUITE_HTTPS", False)
SESSION_COOKIE_SECURE = SUITE_HTTPS
CSRF_COOKIE_SECURE = SUITE_HTTPS
SECURE_SSL_REDIRECT = SUITE_HTTPS
SECURE_HSTS_SECONDS = env.env_int("SUITE_HSTS_SECONDS", 31536000 if SUITE_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SUITE_HTTPS
SECURE_HSTS_PRELOAD = SUITE_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SUITE_HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.env_int("SUITE_SESSION_SECONDS", 30 * 60, minimum=300)
# Idle logoff (HIPAA 164.312(a)(2)(iii)): a session expires after SESSION_COOKIE_AGE without a request.
SESSION_SAVE_EVERY_REQUEST = True
# Messages live in the session, not in a cookie: a cookie's messages are signed but readable (a study's
# or a case's wording in them), and they ride on the response, so a redirect whose answer a phone never
# received took its "work order 12 filed" with it. In the session the next page shows it.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# /metrics and the API schema/docs answer signed-in users and these addresses only (accounts.gates).
# Responses under these paths carry patient or bank data: never cached by browsers or proxies.
SUITE_NO_STORE_PREFIXES = env.env_list(
    "SUITE_NO_STORE_PREFIXES",
    [
        "/medical/",
        "/api/medical/",
        "/api/finance/",
        "/finance/",
        "/audit/",
        "/api/audit/",
        "/account/",
        "/v1/",
    ],
)
SUITE_OPEN_ENDPOINT_ADDRESSES = env.env_list("SUITE_OPEN_ENDPOINT_ADDRESSES", ["127.0.0.1", "::1"])
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# JSON request bodies (restapi.parsers): larger or deeper than this is a 400.
SUITE_JSON_MAX_BYTES = env.env_bytes("SUITE_JSON_MAX_BYTES", 4 * 2**20)
SUITE_JSON_MAX_DEPTH = env.env_int("SUITE_JSON_MAX_DEPTH", 32, minimum=2)
# Brute force (django-axes): after SUITE_LOGIN_FAILURE_LIMIT failures for one account, or from one
# address, sign-in is refused for SUITE_LOCKOUT_MINUTES (429 + Retry-After, accounts.lockout).
AXES_FAILURE_LIMIT = env.env_int("SUITE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.env_int("SUITE_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False
# Content Security Policy (django-csp 4): scripts and styles from our own origin only, no inline
# script, no framing. Inline style attributes stay allowed (progress bars), <style> blocks do not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.env_str("SUITE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
