"""The load balancer's rows: its policy (one row), per-guest rules, each round and its proposals.

Imported by migrations_app.models (Django finds models there); docs/balancing.md explains the fields.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

PERCENT = [MinValueValidator(1.0), MaxValueValidator(100.0)]
DAY_S = 86400


class BalancerMode(models.TextChoices):
    OFF = "off", "Off: no rounds"
    RECOMMEND = "recommend", "Recommend: proposals wait for an operator's Apply"
    AUTOMATIC = "automatic", "Automatic: proposals run as guest migrations under the actor “balancer”"


class HostLoadFrom(models.TextChoices):
    """Where a round reads each host's CPU %: libvirt's node counters (real hosts), or the sum of the
    guests' measured CPU on the host (the load the balancer can move; hosts sharing one kernel, as in the lab)."""

    HOST = "host", "The host: libvirt's node CPU counters"
    GUESTS = "guests", "Its guests: the sum of their measured CPU, as a share of the host's CPUs"


class BalancerPolicy(models.Model):
    """The cluster-wide balancing policy: a single row (pk 1), read by every round.

    Invariant: changed only by migrations_app.services.balancer_policy.policy_update, with an audit row
    holding the values before and after; `get()` creates the row with the defaults on first use.
    """

    SINGLETON = 1

    mode = models.CharField(max_length=16, choices=BalancerMode.choices, default=BalancerMode.OFF)
    cpu_high_pct = models.FloatField("CPU high-water mark (%)", default=80.0, validators=PERCENT)
    host_load_from = models.CharField(
        "Host load from",
        max_length=16,
        choices=HostLoadFrom.choices,
        default=HostLoadFrom.HOST,
        help_text="Where each host's CPU % comes from. “Its guests” suits hosts that share one kernel (the lab).",
    )
    memory_high_pct = models.FloatField("Memory high-water mark (%)", default=90.0, validators=PERCENT)
    hold_s = models.PositiveIntegerField(
        "Hold (seconds)",
        default=300,
        validators=[MaxValueValidator(DAY_S)],
        help_text="How long a host must stay above a mark before a move is proposed.",
    )
    margin_pct = models.FloatField(
        "Minimum improvement (CPU % points)",
        default=5.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="A move must narrow the gap between its two hosts by more than this.",
    )
    max_moves_per_round = models.PositiveIntegerField(default=2, validators=[MaxValueValidator(50)])
    max_moves_per_hour = models.PositiveIntegerField(default=6, validators=[MaxValueValidator(1000)])
    cooldown_s = models.PositiveIntegerField(
        "Cooldown per guest (seconds)",
        default=1800,
        validators=[MaxValueValidator(7 * DAY_S)],
        help_text="A guest the balancer moved is left alone this long.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="balancer_policy_is_a_single_row")]

    def __str__(self) -> str:
        return f"balancer policy: {self.mode}"

    @classmethod
    def get(cls) -> "BalancerPolicy":
        return cls.objects.get_or_create(pk=cls.SINGLETON)[0]


class GuestNeverMove(models.Model):
    """A guest the balancer never moves automatically (nor proposes); people still may."""

    guest = models.OneToOneField("hosts.Guest", on_delete=models.CASCADE, related_name="balancer_never_move")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"never move {self.guest.name}"


class GuestAffinity(models.Model):
    """A group of guests (two or more) the balancer keeps apart (never on one host) or together (never
    separates: it moves none of them)."""

    class Kind(models.TextChoices):
        APART = "apart", "Keep apart"
        TOGETHER = "together", "Keep together"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    guests = models.ManyToManyField("hosts.Guest", related_name="balancer_affinities")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class BalancerRound(models.Model):
    """One balancer round as it went: the imbalance, the hot hosts and why nothing (more) was proposed.

    Invariant: written once per round by services.balancer.balancer_round, under the cluster-wide lease.
    """

    at = models.DateTimeField(db_index=True)
    mode = models.CharField(max_length=16, choices=BalancerMode.choices)
    imbalance = models.FloatField(default=0.0)
    hot = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    proposals = models.PositiveIntegerField(default=0)
    operation = models.ForeignKey(
        "migrations_app.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"balancer round #{self.pk} at {self.at:%H:%M:%S}: {self.proposals} proposal(s)"


class ProposalState(models.TextChoices):
    """PROPOSED waits for an operator; APPLIED became a guest migration (by Apply, or automatic mode);
    DISMISSED an operator said no; EXPIRED a later round no longer proposes it (or its guest moved)."""

    PROPOSED = "proposed", "Proposed"
    APPLIED = "applied", "Applied"
    DISMISSED = "dismissed", "Dismissed"
    EXPIRED = "expired", "Expired"


class BalancerProposal(models.Model):
    """One proposed move: "imbalance from X to Y", the guest, source, target, predicted time and why.

    Invariants:
    - `state` leaves PROPOSED only by compare-and-set (services.balancer_actions, services.balancer);
    - at most one PROPOSED proposal per guest (a partial unique constraint);
    - an APPLIED proposal names the job (Apply) or the Operation (automatic mode) that carries it out.
    """

    round = models.ForeignKey(BalancerRound, on_delete=models.CASCADE, related_name="proposal_rows")
    guest = models.ForeignKey("hosts.Guest", null=True, on_delete=models.SET_NULL, related_name="+")
    guest_name = models.CharField(max_length=128)
    source = models.ForeignKey("hosts.Hypervisor", on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey("hosts.Hypervisor", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=ProposalState.choices, default=ProposalState.PROPOSED)
    imbalance_before = models.FloatField()
    imbalance_after = models.FloatField()
    predicted_s = models.FloatField(default=0.0)
    why = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        "migrations_app.MigrationJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    operation = models.ForeignKey(
        "migrations_app.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["guest"], condition=Q(state="proposed"), name="one_open_proposal_per_guest"
            ),
        ]
        indexes = [models.Index(fields=["state", "decided_at"])]

    def __str__(self) -> str:
        return f"proposal #{self.pk} {self.guest_name} {self.source_id} -> {self.target_id} {self.state}"

    @property
    def headline(self) -> str:
        return (
            f"move {self.guest_name} from {self.source.name} to {self.target.name}: "
            f"imbalance from {self.imbalance_before:.1f} to {self.imbalance_after:.1f}"
        )
