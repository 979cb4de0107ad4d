"""Django's CACHES entry from the CACHE_URL environment variable.

The join limiter and the report cache count and keep in this cache, so every server process must see the same
one: ``redis://HOST:PORT/DB`` (Django's RedisCache; ``rediss://`` for TLS), ``db://TABLE`` (DatabaseCache in the
site's database; ``migrate`` and ``manage.py serve`` create the table) or ``locmem://`` (this process only: one
development server).
"""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# A table name Django quotes safely and every database accepts unquoted as well.
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# The production settings' cache when CACHE_URL is unset.
DEFAULT_CACHE_TABLE = "turing_cache"
DATABASE_MAX_ENTRIES = 20_000
FORMS = "redis://HOST:PORT/DB, db://TABLE or locmem://"


def cache_from_url(url: str, name: str = "CACHE_URL") -> dict:
    """The CACHES["default"] entry url describes; ImproperlyConfigured naming the variable and the problem."""

    def bad(problem):
        return ImproperlyConfigured(f"{name}={url!r}: {problem} (use {FORMS})")

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:  # a port that is not a number, an unclosed IPv6 bracket
        raise bad(str(error)) from None
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise bad("no host")
        if parts.query or parts.fragment:
            raise bad("no query or fragment is read")
        database = parts.path.strip("/") or "0"
        if not database.isdigit():
            raise bad(f"the database {database!r} is not a number")
        # Rebuilt rather than passed through, so that what Redis is given is what was checked.
        credentials = parts.netloc.rpartition("@")[0]
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        location = f"{parts.scheme}://{credentials + '@' if credentials else ''}{host}:{port or 6379}/{database}"
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}
    if parts.scheme == "db":
        table = parts.netloc + parts.path
        if not TABLE_NAME.fullmatch(table):
            raise bad("the table name must be letters, digits and underscores (at most 63), not starting with a digit")
        # Django's default of 300 entries would, at a launch of a few hundred participants a minute, cull live
        # join counts (one per client and minute) and let their clients start again from zero. Expired rows
        # are deleted first, so the table holds two minutes of counts and the reports.
        return {
            "BACKEND": "evalsite.database_cache.DatabaseCache",
            "LOCATION": table,
            "OPTIONS": {"MAX_ENTRIES": DATABASE_MAX_ENTRIES},
        }
    if parts.scheme == "locmem":
        if parts.path.strip("/") or parts.query:
            raise bad("locmem:// takes nothing after it")
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": parts.netloc}
    raise bad(f"unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}")
