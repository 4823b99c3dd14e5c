"""System checks: say loudly when Keyturn runs on keys anyone can read."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def development_keys_in_use(app_configs, **kwargs):
    names = getattr(settings, "PORTAL_DEV_KEYS_IN_USE", [])
    if not names:
        return []
    return [
        Warning(
            f"{', '.join(names)} not set: Keyturn is using public development stand-ins, so "
            "nothing it stores is protected.",
            hint="Run `python manage.py generate_keys` and put the keys in .env. This is "
            "allowed only because DEBUG is on.",
            id="keyturn.W001",
        )
    ]
