"""Headers every response carries."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/healthz", "/admin/login/"])
def test_every_page_denies_camera_microphone_and_location(client, path):
    policy = client.get(path)["Permissions-Policy"]
    assert "camera=()" in policy and "microphone=()" in policy and "geolocation=()" in policy
