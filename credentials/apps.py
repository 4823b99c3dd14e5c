from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import (
            checks,  # noqa: F401 (registers the system checks)
            signin,  # noqa: F401 (audits lockouts: a receiver of axes' signal)
            sudo,  # noqa: F401 (opens and closes the re-authentication window at sign-in/out)
        )
