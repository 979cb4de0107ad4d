"""Production settings: ``DJANGO_SETTINGS_MODULE=evalsite.settings_production``.

Behind a TLS-terminating proxy (nginx). Passes ``python manage.py check --deploy``.
"""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DEBUG", "false")

from evalsite.cache_url import DEFAULT_CACHE_TABLE, cache_from_url  # noqa: E402
from evalsite.settings import *  # noqa: E402,F403

if not os.environ.get("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production (a long random string).")
if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("DEBUG must be false in production.")

# Several gunicorn workers, or several hosts, must count joins together: the site's database unless CACHE_URL
# names Redis. migrate and manage.py serve create the table.
CACHES = {"default": cache_from_url(os.environ.get("CACHE_URL", f"db://{DEFAULT_CACHE_TABLE}"))}

# Static files straight from the app server, so the study runs behind any plain proxy.
MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")  # noqa: F405

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)  # noqa: F405
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 30)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
