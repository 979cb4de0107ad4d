import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Every test writes stimuli and figures into its own folder, never into the real media/.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _empty_cache():
    # The join throttle counts in the cache; every test starts with no joins counted.
    from django.core.cache import cache

    cache.clear()
