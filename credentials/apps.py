from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # checks registers the system checks; sudo opens and closes its window at sign-in/out.
        from . import checks, sudo  # noqa: F401
