from django.apps import AppConfig
from django.core import checks
from django.core.management import call_command
from django.db.models.signals import post_migrate

from turing.checks import STARTUP, static_manifest


def create_cache_table(using, **kwargs):
    # The production settings keep the shared cache (join counts, reports) in the database: `migrate` makes
    # its table as it makes the others, so a deployment that followed the README has it. Does nothing for a
    # cache elsewhere or a table that exists.
    call_command("createcachetable", database=using, verbosity=0)


class TuringConfig(AppConfig):
    name = "turing"
    verbose_name = "Turing tests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        checks.register(static_manifest, checks.Tags.staticfiles, STARTUP, deploy=True)
        post_migrate.connect(create_cache_table, sender=self)
