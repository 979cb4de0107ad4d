import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Every test writes stimuli and figures into its own folder, never into the real media/.
    settings.MEDIA_ROOT = tmp_path / "media"
