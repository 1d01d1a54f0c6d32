"""Guest migration jobs, their throttled progress samples and their timeline; operations (a drain) that
parent several jobs."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from migrations_app.choices import (
    ACTIVE_STATES,
    OPERATION_ACTIVE_STATES,
    OPERATION_TERMINAL_STATES,
    TERMINAL_STATES,
    Kind,
    OperationKind,
    OperationState,
    Phase,
    State,
    WhereGuestIs,
)


class Operation(models.Model):
    """One operator action that runs several guest migrations, e.g. draining a host for maintenance.

    Invariants:
    - `state` changes only by compare-and-set in migrations_app.services.operations;
    - at most one operation per hypervisor is in OPERATION_ACTIVE_STATES (a partial unique constraint);
    - `plan` is the plan as the operator confirmed it (services.drain.plan_as_dict); children follow it;
    - each child MigrationJob points here (`operation`) and carries an idempotency key derived from
      (operation, guest), so a retried step never starts a second move of a guest.
    """

    kind = models.CharField(max_length=16, choices=OperationKind.choices, default=OperationKind.DRAIN)
    hypervisor = models.ForeignKey("hosts.Hypervisor", on_delete=models.PROTECT, related_name="operations")
    state = models.CharField(
        max_length=16, choices=OperationState.choices, default=OperationState.RUNNING, db_index=True
    )
    plan = models.JSONField(default=dict, blank=True)
    stop_on_first_failure = models.BooleanField(default=False)
    stopped = models.BooleanField(default=False, help_text="A child failed and stop_on_first_failure was set.")
    reasons = models.JSONField(default=list, blank=True, help_text="Why the host is not empty (incomplete).")
    refusals = models.JSONField(default=dict, blank=True, help_text="Guest id -> why its move could not start.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_from_ip = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hypervisor"],
                condition=Q(state__in=sorted(s.value for s in OPERATION_ACTIVE_STATES)),
                name="one_active_operation_per_hypervisor",
            ),
        ]

    def __str__(self) -> str:
        return f"operation #{self.pk} {self.kind} {self.hypervisor.name}"

    def get_absolute_url(self) -> str:
        return reverse("operation-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.state in OPERATION_ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in OPERATION_TERMINAL_STATES


class MigrationJob(models.Model):
    """One request to move one guest from `source` to `target`.

    Invariants:
    - `state` changes only through migrations_app.services.transition (compare-and-set on the old state),
      and only along migrations_app.state_machine.TRANSITIONS.
    - At most one job per guest is in ACTIVE_STATES (a partial unique constraint: the database says no).
    - While a job is active its guest has `migrating=True`; the same transaction that makes the job
      terminal clears it and, only for a libvirt-verified move, sets Guest.hypervisor to the target.
    - `options` and `preflight` are what the operator chose and what the checks said, as JSON.
    """

    guest = models.ForeignKey("hosts.Guest", null=True, on_delete=models.SET_NULL, related_name="migration_jobs")
    guest_name = models.CharField(max_length=128)
    guest_uuid = models.UUIDField()
    source = models.ForeignKey("hosts.Hypervisor", on_delete=models.PROTECT, related_name="outgoing_migrations")
    target = models.ForeignKey("hosts.Hypervisor", on_delete=models.PROTECT, related_name="incoming_migrations")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LIVE)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.WAITING)
    options = models.JSONField(default=dict, blank=True)
    preflight = models.JSONField(default=list, blank=True, help_text="The checklist: [{key, status, ...}].")
    memory_mib = models.PositiveBigIntegerField(default=0, help_text="Guest memory reserved on the target.")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_from_ip = models.CharField(max_length=64, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # who runs it: "<hostname>:<pid>" of the worker and its last sign of life (the reconciler reads both)
    owner = models.CharField(max_length=128, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    error = models.TextField(blank=True, help_text="libvirt's own message when the move failed.")
    where_guest_is = models.CharField(max_length=16, choices=WhereGuestIs.choices, blank=True)
    downtime_ms = models.PositiveIntegerField(null=True, blank=True)
    data_sent = models.PositiveBigIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)

    # latest progress (the samples table keeps the history)
    progress_at = models.DateTimeField(null=True, blank=True)
    data_total = models.PositiveBigIntegerField(default=0)
    data_processed = models.PositiveBigIntegerField(default=0)
    data_remaining = models.PositiveBigIntegerField(default=0)
    throughput_bps = models.PositiveBigIntegerField(default=0)
    dirty_rate_bps = models.PositiveBigIntegerField(default=0)
    iteration = models.PositiveIntegerField(default=0)
    remaining_grew = models.BooleanField(default=False)
    bandwidth_mibps = models.PositiveIntegerField(default=0, help_text="Current cap, 0 = unlimited.")
    postcopy_started = models.BooleanField(default=False)
    # An API client's Idempotency-Key: a retried request returns this job instead of making another.
    idempotency_key = models.CharField(max_length=64, blank=True, default="")
    # What the move was predicted to do when it was requested (services.predictions): the job page shows
    # it beside what happened.
    prediction = models.JSONField(default=dict, blank=True)
    # How the target was chosen when the operator asked for "Auto" (services.auto_target): "auto: <reason>".
    target_reason = models.CharField(max_length=500, blank=True, default="")
    operation = models.ForeignKey(Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    # When the worker reached each step of the move (orchestrator.timing: epoch ms by step name), for
    # bench/migration.py's split of the dashboard's own cost; written once, when the job settles.
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["guest"],
                condition=Q(state__in=sorted(s.value for s in ACTIVE_STATES)),
                name="one_active_migration_per_guest",
            ),
            models.CheckConstraint(condition=~Q(source=models.F("target")), name="migration_source_is_not_target"),
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_migration_per_idempotency_key",
            ),
        ]
        indexes = [models.Index(fields=["state", "requested_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.guest_name} {self.source.name} -> {self.target.name}"

    def get_absolute_url(self) -> str:
        return reverse("migration-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def percent(self) -> int:
        if self.state == State.SUCCEEDED:
            return 100
        if not self.data_total:
            return 0
        return max(0, min(99, round(100 * (self.data_total - self.data_remaining) / self.data_total)))

    @property
    def eta_s(self) -> int | None:
        """Seconds left at the current throughput, net of the dirty rate (None if it cannot converge)."""
        net = self.throughput_bps - self.dirty_rate_bps
        if not self.data_remaining or net <= 0 or self.state != State.RUNNING:
            return None
        return round(self.data_remaining / net)

    @property
    def duration_s(self) -> float | None:
        if self.total_ms is not None:
            return self.total_ms / 1000
        return None

    @property
    def preflight_summary(self) -> str:
        worst = "pass"
        for item in self.preflight or []:
            if item.get("status") == "fail":
                return "fail"
            if item.get("status") == "warn":
                worst = "warn"
        return worst


class MigrationSample(models.Model):
    """One throttled progress sample of a live job (libvirt jobStats), for the chart and the timeline."""

    job = models.ForeignKey(MigrationJob, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    elapsed_ms = models.PositiveIntegerField(default=0)
    data_total = models.PositiveBigIntegerField(default=0)
    data_processed = models.PositiveBigIntegerField(default=0)
    data_remaining = models.PositiveBigIntegerField(default=0)
    throughput_bps = models.PositiveBigIntegerField(default=0)
    dirty_rate_bps = models.PositiveBigIntegerField(default=0)
    iteration = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["job", "at"]
        indexes = [models.Index(fields=["job", "at"])]

    def __str__(self) -> str:
        return f"#{self.job_id} @{self.elapsed_ms}ms remaining={self.data_remaining}"


class MigrationEvent(models.Model):
    """One line of a job's timeline: state changes, libvirt events, operator controls."""

    job = models.ForeignKey(MigrationJob, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32)  # "state", "libvirt", "control", "preflight", "reconciler"
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "at", "id"]

    def __str__(self) -> str:
        return f"#{self.job_id} {self.kind}: {self.message[:60]}"


# The balancer's rows live in their own module (this one stays small); Django finds them through here.
from migrations_app.balancer_models import (  # noqa: E402
    BalancerMode,
    BalancerPolicy,
    BalancerProposal,
    BalancerRound,
    GuestAffinity,
    GuestNeverMove,
    HostLoadFrom,
    ProposalState,
)

__all__ = [
    "BalancerMode",
    "BalancerPolicy",
    "BalancerProposal",
    "BalancerRound",
    "GuestAffinity",
    "GuestNeverMove",
    "HostLoadFrom",
    "MigrationEvent",
    "MigrationJob",
    "MigrationSample",
    "Operation",
    "ProposalState",
]
