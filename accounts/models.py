"""Accounts: the append-only, hash-chained audit trail and the login throttle.

Users and roles are Django's own User and Group (roles.py holds the one role -> permission table).
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from accounts.roles import PERMISSION_LABELS, Perm


class AuditEvent(models.Model):
    """One thing that happened: who did what to which guest/hypervisor, with what outcome.

    Invariants:
    * append-only: the application never updates or deletes a row (in PostgreSQL a trigger refuses
      UPDATE/DELETE/TRUNCATE; the only update it lets through is the FK's SET NULL when a user is deleted,
      which is why `actor_username` is kept and `actor_id` is not hashed);
    * rows are written only by `accounts.audit.audit_record`, inside the transaction of the change they
      describe, one writer at a time, so `id` order is chain order;
    * `hash` = HMAC-SHA256(settings.AUDIT_KEY, canonical JSON of the row's content + `prev_hash`) and
      `prev_hash` is the previous row's `hash` ("" for the first row): `manage.py audit verify` checks both;
    * `hypervisor` is the host concerned (a guest migration's source), `target_hypervisor` a move's target;
    * `outcome` is always one of `Outcome` (audit_record refuses anything else).
    """

    class Outcome(models.TextChoices):
        OK = "ok", "ok"
        FAILED = "failed", "failed"
        REFUSED = "refused", "refused"
        PENDING = "pending", "pending"

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    source_ip = models.CharField(max_length=45, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    guest = models.CharField(max_length=255, blank=True)
    guest_uuid = models.CharField(max_length=36, blank=True)
    hypervisor = models.CharField(max_length=255, blank=True)
    # db_default: adding the column to a big table is instant, and rows inserted by SQL get "" too.
    target_hypervisor = models.CharField(max_length=255, blank=True, db_default="")
    migration_id = models.BigIntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, default=Outcome.OK)
    message = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        # Append-only: no add/change/delete permissions to hand out; the project's own permissions
        # live here so `Perm` values ("accounts.<codename>") work with has_perm().
        default_permissions = ()
        permissions = [(p.codename, PERMISSION_LABELS[p]) for p in Perm]
        # The list page filters on one column and pages by -id: a (column, id) index serves both.
        indexes = [
            models.Index(fields=["action", "-id"], name="audit_action_id"),
            models.Index(fields=["actor_username", "-id"], name="audit_actor_id"),
            models.Index(fields=["guest_uuid", "-id"], name="audit_guest_uuid_id"),
            models.Index(fields=["guest", "-id"], name="audit_guest_id"),
            models.Index(fields=["hypervisor", "-id"], name="audit_hypervisor_id"),
            models.Index(fields=["target_hypervisor", "-id"], name="audit_target_hypervisor_id"),
            models.Index(fields=["outcome", "-id"], name="audit_outcome_id"),
            models.Index(fields=["migration_id", "-id"], name="audit_migration_id"),
        ]

    def __str__(self) -> str:
        who = self.actor_username or "system"
        where = f"{self.hypervisor} -> {self.target_hypervisor}" if self.target_hypervisor else self.hypervisor
        target = self.guest or where
        return f"#{self.pk} {self.action} {who}{' ' + target if target else ''} {self.outcome}"

    def get_absolute_url(self) -> str:
        return reverse("audit-detail", args=[self.pk])


class LoginThrottle(models.Model):
    """Failed sign-ins per (username, source IP) inside the current window.

    Invariant: while `locked_until` is in the future, sign-in for this pair is refused without
    checking the password; a successful sign-in deletes the row.
    """

    username = models.CharField(max_length=150)
    source_ip = models.CharField(max_length=45)
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["username", "source_ip"], name="login_throttle_unique")]

    def __str__(self) -> str:
        return f"{self.username}@{self.source_ip} failures={self.failures}"


class ApiTokenUse(models.Model):
    """When an API token (django-rest-knox's AuthToken, which records no use) last authenticated a request.

    Invariant: written only by `accounts.tokens.api_token_used`, at most once a minute per token (the
    time shown to people, not a per-request log); goes with its token when the token is revoked or expires.
    """

    token = models.OneToOneField("knox.AuthToken", primary_key=True, on_delete=models.CASCADE, related_name="use")
    last_used_at = models.DateTimeField()
    last_used_ip = models.CharField(max_length=45, blank=True)

    def __str__(self) -> str:
        return f"{self.token.token_key} used {self.last_used_at:%Y-%m-%d %H:%M}"
