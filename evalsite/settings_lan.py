"""A poster session served from a laptop over plain HTTP on the local network (``manage.py serve``).

The production settings without what needs TLS: a LAN address has no certificate, so there is no HTTPS
redirect, no HSTS, and cookies are not marked Secure (a phone would otherwise drop the session cookie and
every vote would fail). DEBUG is off, static files are served by WhiteNoise from collectstatic's manifest,
and SECRET_KEY is required (serve passes the development settings' key: the environment's, or the one
kept in .secret-key, so sessions survive a restart).
"""

import os

os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

from evalsite.settings_production import *  # noqa: E402,F403

SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_HSTS_PRELOAD = False
