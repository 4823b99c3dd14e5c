"""Error reports that never carry a secret.

Django's own filter hides ``sensitive_variables`` only when DEBUG is off, and only the
variables named. Keyturn's filter is always on and also hides, in every frame, any local whose
name says it may hold a secret, and any value shaped like one, so a traceback e-mailed to an
administrator or shown on a DEBUG page is safe to read.
"""

import re

from django.views.debug import SafeExceptionReporterFilter

from credentials import crypto


class KeyturnExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|CACHE_URL", flags=re.I
    )
    _secret_names = re.compile(
        r"key|secret|plaintext|presented|token|digest|ciphertext|password|issued|nonce|context",
        flags=re.I,
    )

    def is_active(self, request):
        return True  # also with DEBUG on: a secret on a debug page is still a leak

    def get_traceback_frame_variables(self, request, tb_frame):
        cleansed = super().get_traceback_frame_variables(request, tb_frame)
        return [
            (name, self.cleansed_substitute if self._risky(name, value) else value)
            for name, value in cleansed
        ]

    def _risky(self, name, value) -> bool:
        if self._secret_names.search(name):
            return True
        try:
            return crypto.looks_secret(repr(value)[:100_000])
        except Exception:  # a repr that fails says nothing either way; hide it
            return True

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if request is None:
            return parameters
        parameters = parameters.copy()
        for name in ("public_key", "note", "once", "password", "password1", "password2", "token"):
            if name in parameters:
                parameters[name] = self.cleansed_substitute
        return parameters
