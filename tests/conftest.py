"""Fixtures shared by every test: its own media folder, an empty cache, a fast password hasher and one torch
thread; and ``clock``, a django.utils.timezone.now that stands still until the test moves it
(``clock.advance(milliseconds=900)``).

The Django-side fixtures (studies, staff client, the vote study) are in tests/turing/conftest.py; the colour
photos, splits and tiny runs in tests/colorization/conftest.py and tests/baselines/conftest.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Every test writes stimuli and figures into its own folder, never into the real media/.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _empty_cache():
    # The join throttle counts in the cache; every test starts with no joins counted.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Django's PBKDF2 takes about half a CPU second per password by design, and the login throttle and demo
    # login tests check dozens of them; what they test is who may log in, not the hash. Django's documentation
    # recommends a fast hasher in tests ("Speeding up the tests"). Servers started in a subprocess keep PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The test machine's two cores are shared with other test runs; one torch thread per test process is faster
    # than oversubscription. Session scope, so that it also holds while session-, package- and module-scoped
    # fixtures train their tiny runs (tests/colorization, tests/baselines, tests/turing/stimuli/test_building.py).
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class Clock:
    """What timezone.now returns: the moment the test began, moved only by advance()."""

    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    # Time between two requests is the test's to choose, not the machine's: a busy machine takes hundreds of ms.
    # Views read django.utils.timezone.now when called, so replacing it there reaches every one of them.
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock
