"""Settings read from environment variables, with defaults that suit a laptop demo.

SQLite (``db.sqlite3`` beside manage.py) unless ``DATABASE_URL`` names another database,
for example ``postgres://user:pass@localhost/turing``. This process's memory as the cache unless ``CACHE_URL``
names a shared one (evalsite/cache_url.py); behind a proxy, ``TRUSTED_PROXIES`` and ``CLIENT_IP_HEADER`` say
whose header names the client (turing/client_address.py).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from evalsite.cache_url import cache_from_url
from turing.client_address import check_proxy_settings

BASE_DIR = Path(__file__).resolve().parent.parent


TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def env_bool(name, default):
    """A yes/no environment variable; anything else (SECURE_SSL_REDIRECT=ture) stops start-up with a message."""
    value = os.environ.get(name, str(default)).strip().lower()
    if value not in TRUE | FALSE:
        raise ImproperlyConfigured(
            f"{name}={os.environ[name]!r} is not a yes/no value: use one of {', '.join(sorted(TRUE | FALSE - {''}))}"
        )
    return value in TRUE


def local_secret_key(path):
    """The key kept in path (git-ignored, owner-only), made on first use: a development server or `serve`
    restarted keeps its sessions, so participants keep their place and staff stay logged in. A checkout that
    cannot be written gets a key per process."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError:
        return get_random_secret_key()
    with os.fdopen(descriptor, "w") as file:
        file.write(get_random_secret_key())
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", True)
# Nothing secret is committed: the key comes from the environment (production settings refuse to start
# without it) or from a file beside manage.py.
SECRET_KEY = os.environ.get("SECRET_KEY") or local_secret_key(BASE_DIR / ".secret-key")
# Phones at a poster session reach the laptop by its LAN address, so every host is
# accepted in debug mode unless the researcher narrows it.
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "*" if DEBUG else "localhost").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "turing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "turing.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "turing.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# Staff login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is locked out until AXES_COOLOFF_HOURS pass or an admin deletes the attempt in the admin
# ("Axes > Access attempts") or runs `manage.py axes_reset`. A right password resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "1"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Counted per username and client address as turing.client_address finds it: behind a trusted proxy the
# proxy's client, so that one person's wrong passwords lock out only that person, never the staff behind it.
AXES_CLIENT_IP_CALLABLE = "turing.client_address.client_address"

# Behind a proxy (nginx), its addresses or networks, comma-separated, and the header it writes the client's address
# in (X-Forwarded-For or X-Real-IP). The header is believed only on requests from these addresses.
TRUSTED_PROXIES = [proxy.strip() for proxy in os.environ.get("TRUSTED_PROXIES", "").split(",") if proxy.strip()]
CLIENT_IP_HEADER = os.environ.get("CLIENT_IP_HEADER", "").strip()
check_proxy_settings(TRUSTED_PROXIES, CLIENT_IP_HEADER)

ROOT_URLCONF = "evalsite.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "evalsite.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Votes from 30 phones arrive at once; WAL and a busy timeout keep SQLite from
    # answering "database is locked" under that load. Connections persist (CONN_MAX_AGE) as for any
    # database: opening one costs half a millisecond of CPU, a tenth of a vote.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "admin:login"
# A participant's session must outlive a long study and a phone put to sleep.
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
# No script reads the CSRF cookie (participant.js takes the token from its form), so scripts may not.
CSRF_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Shared by every server process (the join limiter counts in it, the report is kept in it): see
# evalsite/cache_url.py. One development server needs no more than its own memory.
CACHES = {"default": cache_from_url(os.environ.get("CACHE_URL", "locmem://"))}

# Joins accepted per client address and minute (0: no limit); see turing/participant/throttle.py.
TURING_JOINS_PER_MINUTE = int(os.environ.get("TURING_JOINS_PER_MINUTE", "30"))
# After its answer, a trial's image URL keeps working this long, for a reload of the page that showed it.
TURING_IMAGE_GRACE_SECONDS = 10
