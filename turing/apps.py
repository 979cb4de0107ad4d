from django.apps import AppConfig


class TuringConfig(AppConfig):
    name = "turing"
    verbose_name = "Turing tests"
    default_auto_field = "django.db.models.BigAutoField"
