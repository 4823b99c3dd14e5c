"""django-otp's device pages are not offered: they show TOTP seeds and backup codes, and let
anyone with model rights add a device to someone else's account. People enrol themselves
(credentials/views/two_factor.py); administrators reset from the user page."""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

for _model in (TOTPDevice, StaticDevice):
    # django_otp's apps register them before ours (INSTALLED_APPS order); another module may
    # have unregistered them already.
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
