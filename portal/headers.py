"""Response headers Django has no setting for: Permissions-Policy and Cache-Control: no-store.

The rest of the set comes from Django's SecurityMiddleware (HSTS, X-Content-Type-Options,
Referrer-Policy, Cross-Origin-Opener-Policy), XFrameOptionsMiddleware and django-csp's
CSPMiddleware; docs/headers.md lists the whole set and why each value was chosen.
"""

from django.conf import settings
from django.utils.cache import patch_cache_control


def permissions_policy(policy: dict[str, list[str]]) -> str:
    """The Permissions-Policy header value for ``{feature: [origins]}``.

    An empty list denies the feature everywhere (``camera=()``); ``["self"]`` allows it to
    this origin only (``clipboard-write=(self)``). Anything but ``self`` is written as a
    quoted origin, as the header's structured-field syntax wants.
    """
    parts = []
    for feature, origins in policy.items():
        quoted = " ".join(origin if origin == "self" else f'"{origin}"' for origin in origins)
        parts.append(f"{feature}=({quoted})")
    return ", ".join(parts)


class SecurityHeadersMiddleware:
    """Adds Permissions-Policy and ``Cache-Control: no-store`` to every response it sees.

    It sits below WhiteNoise, so static files (which hold no secret and should be cached)
    never reach it; every page, API answer, redirect and error Django itself makes does.
    No-store on all of them is simpler to hold than a list of the pages that show secret
    metadata, and no page of the portal is worth caching: each is per user and up to date.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = permissions_policy(settings.PORTAL_PERMISSIONS_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Permissions-Policy", self.policy)
        if "no-store" not in response.get("Cache-Control", ""):
            if response.has_header("Cache-Control"):
                patch_cache_control(response, no_store=True)
            else:
                response["Cache-Control"] = "no-store"
        return response
