"""The migrations and the models agree: a fresh database gets exactly the schema the code expects."""

import io

from django.core.management import call_command


def test_every_model_change_has_its_migration(db):
    out = io.StringIO()
    # --check exits with status 1 (SystemExit) when a model change has no migration, naming it in out.
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        raise AssertionError(f"models and migrations differ; run makemigrations:\n{out.getvalue()}") from None
