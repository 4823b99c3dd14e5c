"""Guided rotations: one persisted walk through a credential's playbook."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .core import Credential, CredentialVersion


class Rotation(models.Model):
    """One guided rotation of a credential, resumable from any browser by anyone allowed.

    ``step`` is the index of the current step in ``playbooks.for_kind(playbook).steps(mode)``.
    ``log`` is the rotation's own account, one entry per thing that happened: who, when, which
    step, what was confirmed or what a check found. It never holds a secret. At most one
    rotation per credential is in progress (a database constraint), so a second person opening
    the rotation joins it instead of starting another.
    """

    class Mode(models.TextChoices):
        ROUTINE = "routine", "Routine"
        EXPOSURE = "exposure", "Exposure"

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        ABANDONED = "abandoned", "Abandoned"

    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="rotations")
    playbook = models.CharField(max_length=32)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ROUTINE)
    state = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    step = models.PositiveSmallIntegerField(default=0)
    # When the current step became current: "activity since the step before" counts from here.
    step_started_at = models.DateTimeField(default=timezone.now)
    overlap_seconds = models.PositiveIntegerField(null=True, blank=True)
    old_version = models.ForeignKey(
        CredentialVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    new_version = models.ForeignKey(
        CredentialVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The proof-of-possession challenge on show, and the ones shown before it (not secrets:
    # random text a key holder signs, useless without their private key).
    challenge = models.CharField(max_length=80, blank=True)
    earlier_challenges = models.JSONField(default=list, blank=True)
    log = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.CharField(max_length=200)
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["credential"],
                condition=Q(state="in_progress"),
                name="one_rotation_in_progress_per_credential",
            ),
            models.CheckConstraint(
                name="rotation_state_valid",
                condition=Q(state__in=["in_progress", "completed", "abandoned"]),
            ),
            models.CheckConstraint(
                name="rotation_mode_valid", condition=Q(mode__in=["routine", "exposure"])
            ),
        ]

    def __str__(self):
        return f"{self.get_mode_display()} rotation of {self.credential.name} ({self.state})"

    @property
    def in_progress(self) -> bool:
        return self.state == self.Status.IN_PROGRESS
