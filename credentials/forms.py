"""Forms for the portal's pages. They parse and validate input; lifecycle does the work."""

from django import forms

from .lifecycle import MAX_NOTE_LENGTH, MAX_OVERLAP_SECONDS
from .models import SCOPES, App, Kind, RevokeReason

SCOPE_CHOICES = [(scope, f"{scope} — {label}") for scope, label in SCOPES.items()]
ISSUABLE_KINDS = [(k.value, k.label) for k in Kind if k != Kind.ENDPOINT_SECRET]
# "Exposed" has its own, administrators-only page; "rotated" is what rotations record.
REVOKE_REASONS = [
    (r.value, r.label) for r in (RevokeReason.ROUTINE, RevokeReason.OFFBOARDING, RevokeReason.OTHER)
]
EVENT_TYPES = [
    "credential.rotated",
    "credential.revoked",
    "credential.reactivated",
    "credential.exposed",
    "credential.expiring",
    "credential.expired",
    "test.ping",
]


class OnceForm(forms.Form):
    """A form that mints a secret carries a one-time token (see credentials/once.py)."""

    once = forms.CharField(widget=forms.HiddenInput)


class PolicyFields(forms.Form):
    lifetime_days = forms.IntegerField(
        required=False,
        min_value=1,
        label="Lifetime (days)",
        help_text="Leave empty for the organisation's maximum.",
    )
    overlap_hours = forms.DecimalField(
        min_value=0,
        max_value=MAX_OVERLAP_SECONDS // 3600,
        decimal_places=2,
        initial=24,
        label="Overlap on rotation (hours)",
        help_text="How long the old version keeps working after the next rotation.",
    )


class IssueForm(OnceForm, PolicyFields):
    app = forms.ModelChoiceField(queryset=App.objects.filter(archived_at__isnull=True))
    kind = forms.ChoiceField(choices=ISSUABLE_KINDS)
    name = forms.CharField(
        max_length=120,
        help_text="Say what it is for, who owns it and when it expires.",
    )
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    public_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Service accounts only: the PUBLIC key (PEM or OpenSSH), never a private one.",
    )
    field_order = ["app", "kind", "name", "scopes", "lifetime_days", "overlap_hours", "public_key"]


class RotateForm(OnceForm):
    overlap_hours = forms.DecimalField(
        min_value=0,
        max_value=MAX_OVERLAP_SECONDS // 3600,
        decimal_places=2,
        label="Overlap (hours)",
        help_text="0 revokes the current version at once; more keeps it working meanwhile.",
    )
    public_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Service-account keys: the NEW public key. Never a private key.",
    )


class EndpointForm(OnceForm):
    app = forms.ModelChoiceField(queryset=App.objects.filter(archived_at__isnull=True))
    url = forms.CharField(max_length=2048, label="URL", widget=forms.URLInput)
    name = forms.CharField(max_length=120, required=False, help_text="Optional label.")
    event_types = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class RevokeForm(forms.Form):
    reason = forms.ChoiceField(choices=REVOKE_REASONS)
    note = forms.CharField(
        required=False,
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when the reason is 'Other'.",
    )


class ExposureForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Where was it found? Who else should know?",
    )
    confirm = forms.BooleanField(
        label="I understand this version stops working now and can never be reactivated."
    )
