"""Joins (and look-ups of a participant label from another browser) per client address and minute, counted in
Django's cache.

A poster session puts many phones behind one NAT address, so the default (TURING_JOINS_PER_MINUTE, 30) is
generous; it stops one client from enrolling dozens of throwaway participants. The client is who
turing.client_address says (behind a trusted proxy, the proxy's client). The count lives in the default cache,
which every server process shares in production (CACHE_URL, evalsite/cache_url.py), so that they count together.
"""

import time

from django.conf import settings
from django.core.cache import cache

from turing.client_address import client_address

WINDOW_SECONDS = 60


def join_allowed(request) -> bool:
    """Count one join from this request's address; False once the address is over the limit this minute."""
    limit = settings.TURING_JOINS_PER_MINUTE
    if not limit:
        return True
    key = f"turing:joins:{client_address(request)}:{int(time.time() // WINDOW_SECONDS)}"
    # add() then incr(): atomic in every cache backend, so concurrent joins cannot both read the same count.
    cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add() and incr()
        cache.set(key, 1, timeout=2 * WINDOW_SECONDS)
        count = 1
    return count <= limit
