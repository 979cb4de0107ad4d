from django.apps import AppConfig
from django.core import checks

from turing.checks import STARTUP, static_manifest


class TuringConfig(AppConfig):
    name = "turing"
    verbose_name = "Turing tests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        checks.register(static_manifest, checks.Tags.staticfiles, STARTUP, deploy=True)
