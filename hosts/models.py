"""The cluster inventory: storage servers, hypervisors and the guests libvirt reports on them.

Inventory (hosts.services.inventory) owns Hypervisor/Guest rows: it writes what libvirt says. Operators
edit only the names, URIs and storage records; they never set where a guest runs.
"""

from django.db import models
from django.urls import reverse


class StorageServer(models.Model):
    """A server exporting guest images (NFS in the reference lab).

    Invariant: `mount_path` is where every hypervisor that mounts this export sees it; a disk whose
    source lies under `mount_path` (or is an NFS network disk on `address:export_path`) lives here.
    """

    class Protocol(models.TextChoices):
        NFS = "nfs", "NFS"
        ISCSI = "iscsi", "iSCSI"
        CEPH = "ceph", "Ceph RBD"
        LOCAL = "local", "Local directory (not shared)"

    name = models.CharField(max_length=64, unique=True)
    address = models.CharField(max_length=255, help_text="Host name or IP the export is served from.")
    export_path = models.CharField(max_length=255, help_text="Path exported by the server, e.g. /srv/images.")
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.NFS)
    mount_path = models.CharField(
        max_length=255,
        default="/var/lib/libvirt/images",
        help_text="Where the hypervisors mount the export (the same path on every host).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("storage-detail", args=[self.pk])

    @property
    def is_shared(self) -> bool:
        return self.protocol != self.Protocol.LOCAL

    def holds_path(self, path: str) -> bool:
        """True if a file disk at `path` lies on this export as the hypervisors mount it."""
        for root in {self.mount_path, self.export_path}:
            root = root.rstrip("/")
            if root and (path == root or path.startswith(root + "/")):
                return True
        return False


class Hypervisor(models.Model):
    """A KVM host reached over one libvirt URI.

    Invariants: `uri` is unique; `state` is OFFLINE whenever the last refresh could not reach libvirt
    (with libvirt's message in `last_error`), except that MAINTENANCE, set by an operator, is sticky.
    Capacity figures are the ones libvirt reported at `last_seen_at`.
    """

    class State(models.TextChoices):
        UNKNOWN = "unknown", "Not yet contacted"
        ONLINE = "online", "Online"
        OFFLINE = "offline", "Offline"
        MAINTENANCE = "maintenance", "Maintenance"

    class Health(models.TextChoices):
        HEALTHY = "healthy", "Healthy"
        SUSPECT = "suspect", "Suspect: libvirt does not answer"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=64, unique=True)
    uri = models.CharField(max_length=255, unique=True, help_text="libvirt URI, e.g. qemu+tcp://10.0.0.2/system")
    migration_address = models.CharField(
        max_length=255, blank=True, help_text="Address the migration stream should use (blank: libvirt's default)."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    last_error = models.TextField(blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    host_uuid = models.CharField(max_length=64, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    cpu_model = models.CharField(max_length=128, blank=True)
    cpus = models.PositiveIntegerField(default=0)
    vcpus_allocated = models.PositiveIntegerField(default=0, help_text="vCPUs of running guests.")
    memory_total_mib = models.PositiveBigIntegerField(default=0)
    memory_free_mib = models.PositiveBigIntegerField(default=0)
    bridges = models.JSONField(default=list, blank=True)
    migration_tls = models.BooleanField(
        "Encrypted migration set up",
        default=False,
        help_text="QEMU on this host has a CA and host certificates for TLS migration (qemu.conf "
        "migrate_tls_x509_cert_dir, migrate_tls_x509_verify = 1). libvirt does not report this, so an admin says so.",
    )
    storage_servers = models.ManyToManyField(StorageServer, blank=True, related_name="hypervisors")
    created_at = models.DateTimeField(auto_now_add=True)
    # Failure detection (docs/ha.md, hosts/ha_detection.py): written only by hosts.services.ha_detection.
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.HEALTHY)
    health_since = models.DateTimeField(null=True, blank=True, help_text="When the current health began.")
    health_note = models.CharField(max_length=255, blank=True, help_text="Why the host has its health.")
    ha_host_id = models.PositiveIntegerField(
        "Lockspace host id",
        null=True,
        blank=True,
        help_text="This host's id in the sanlock lockspace (qemu-sanlock.conf host_id): whose lease renewals to watch.",
    )
    lease_stamp = models.BigIntegerField(null=True, blank=True, help_text="Its lockspace lease's last timestamp seen.")
    lease_progress_at = models.DateTimeField(null=True, blank=True, help_text="When that timestamp last moved.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("hypervisor-detail", args=[self.pk])

    @property
    def memory_used_mib(self) -> int:
        return max(self.memory_total_mib - self.memory_free_mib, 0)

    @property
    def memory_used_percent(self) -> int:
        return round(100 * self.memory_used_mib / self.memory_total_mib) if self.memory_total_mib else 0

    @property
    def cpu_used_percent(self) -> int:
        """vCPUs of running guests against physical CPUs (may exceed 100: overcommit)."""
        return round(100 * self.vcpus_allocated / self.cpus) if self.cpus else 0


class Guest(models.Model):
    """A libvirt domain, identified by its UUID.

    Invariants: `hypervisor` changes only on evidence from libvirt (an inventory refresh that finds
    the domain there, or a verified migration). While `migrating` is set the inventory leaves
    `hypervisor` alone: mid-move a guest is legitimately defined on two hosts.
    """

    class Power(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        SHUTOFF = "shutoff", "Shut off"
        SHUTDOWN = "shutdown", "Shutting down"
        CRASHED = "crashed", "Crashed"
        PMSUSPENDED = "pmsuspended", "Suspended"
        BLOCKED = "blocked", "Blocked"
        MISSING = "missing", "Not found on its host"
        UNKNOWN = "unknown", "Unknown"

    uuid = models.UUIDField(unique=True)
    name = models.CharField(max_length=128, db_index=True)
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.PROTECT, related_name="guests")
    power = models.CharField(max_length=16, choices=Power.choices, default=Power.UNKNOWN)
    persistent = models.BooleanField(default=True)
    vcpus = models.PositiveIntegerField(default=1)
    memory_mib = models.PositiveBigIntegerField(default=0)
    migrating = models.BooleanField(default=False, help_text="Set while a guest migration owns this guest.")
    # Set (with `migrating`) while an HA recovery restarts the guest on a healthy host after its host
    # failed: the topology and the guest page say "recovering" rather than "moving" (docs/ha.md, section 4).
    recovering = models.BooleanField(default=False, help_text="Set while HA recovery restarts this guest elsewhere.")
    recovering_by = models.CharField(max_length=128, blank=True, help_text="The worker restarting it (its label).")
    recovering_since = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # libvirt's last page-sampling measurement (hosts.services.dirty_rates): what predictions use
    dirty_rate_mibps = models.FloatField(null=True, blank=True)
    dirty_rate_at = models.DateTimeField(null=True, blank=True)
    # Redundancy (docs/ha.md): the lock manager's lease libvirt reports for the guest ("lockspace/key" of
    # its first <lease>, blank when it has none), and whether to restart it elsewhere when its host fails.
    lease = models.CharField(max_length=255, blank=True)
    ha_restart = models.BooleanField(default=False, help_text="Restart on a healthy host when its host fails.")
    ha_priority = models.IntegerField(default=0, help_text="Higher restarts first when a host fails.")
    # The definition to restart it from when its host no longer answers (read when the flag was set).
    definition_xml = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["hypervisor", "name"])]

    def __str__(self) -> str:
        return f"{self.name}@{self.hypervisor_id}"

    def get_absolute_url(self) -> str:
        return reverse("guest-detail", args=[self.pk])


class GuestDisk(models.Model):
    """One disk of a guest as libvirt describes it; `storage_server` is resolved from its source."""

    guest = models.ForeignKey(Guest, on_delete=models.CASCADE, related_name="disks")
    target = models.CharField(max_length=32)
    device = models.CharField(max_length=16, default="disk")
    source_type = models.CharField(max_length=16, help_text="file, block, network, volume")
    source = models.CharField(max_length=1024, blank=True, help_text="Path, or the network disk's name.")
    source_protocol = models.CharField(max_length=16, blank=True)
    source_host = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=16, blank=True)
    cache = models.CharField(max_length=16, blank=True, help_text="libvirt cache mode; blank = hypervisor default")
    storage_server = models.ForeignKey(StorageServer, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["target"]
        constraints = [models.UniqueConstraint(fields=["guest", "target"], name="disk_target_unique_per_guest")]

    def __str__(self) -> str:
        return f"{self.guest.name}:{self.target}"

    @property
    def location(self) -> str:
        if self.source_protocol:
            return f"{self.source_protocol}://{self.source_host}{self.source}"
        return self.source


class GuestNic(models.Model):
    """One network interface of a guest and the bridge it plugs into."""

    guest = models.ForeignKey(Guest, on_delete=models.CASCADE, related_name="nics")
    mac = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, help_text="libvirt interface type: bridge, network, user ...")
    bridge = models.CharField(max_length=64, blank=True)
    network = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["mac"]

    def __str__(self) -> str:
        return f"{self.guest.name}:{self.mac}"


class WorkerLease(models.Model):
    """A named lease so only one long-running worker task (the inventory watcher) runs at a time.

    Invariant: a holder owns the lease only while `expires_at` is in the future; it must renew it
    well before then. Taken and renewed with compare-and-set updates, never read-modify-write.
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'} until {self.expires_at:%H:%M:%S}"


class InventoryRefreshStats(models.Model):
    """How one hypervisor's inventory refreshes went, for /metrics (count, failures, time spent).

    Invariant: written only by hosts.services.inventory.refresh_hypervisor, by F() increments, so the
    counters never go back (a stale Hypervisor object saved by a form cannot overwrite them: they live
    in their own row); deleted with its hypervisor.
    """

    hypervisor = models.OneToOneField(
        Hypervisor, primary_key=True, on_delete=models.CASCADE, related_name="refresh_stats"
    )
    refreshes = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveBigIntegerField(default=0, help_text="Refreshes that could not reach libvirt.")
    duration_ms_total = models.PositiveBigIntegerField(default=0)
    last_duration_ms = models.PositiveIntegerField(default=0)
    last_refresh_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.hypervisor_id}: {self.refreshes} refreshes, {self.failures} failed"


class HostLoadSample(models.Model):
    """A host's measured load over one interval of `resolution_s` seconds starting at `at`.

    Invariant: written by hosts.services.load_history only. 10 s rows come from two libvirt samples;
    coarser rows are averages of the finer tier's rows in their interval (hosts.load_tiers says how
    long each tier is kept). `cpu_pct` is None when the interval had no usable CPU counters.
    """

    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.CASCADE, related_name="load_samples")
    at = models.DateTimeField()
    resolution_s = models.PositiveIntegerField()
    cpu_pct = models.FloatField(null=True)
    memory_used_mib = models.PositiveBigIntegerField()
    memory_total_mib = models.PositiveBigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["hypervisor", "resolution_s", "at"]),
            models.Index(fields=["resolution_s", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.hypervisor_id}@{self.at:%H:%M:%S}/{self.resolution_s}s: {self.cpu_pct}%"


class GuestLoadSample(models.Model):
    """A running guest's measured load over one interval of `resolution_s` seconds starting at `at`.

    Invariant: as HostLoadSample; `cpu_pct_of_vcpus` (100 = every vCPU busy) and `cpu_cores` (host
    cores' worth used) are None when libvirt gave no CPU time for both ends of the interval.
    """

    guest = models.ForeignKey(Guest, on_delete=models.CASCADE, related_name="load_samples")
    at = models.DateTimeField()
    resolution_s = models.PositiveIntegerField()
    cpu_pct_of_vcpus = models.FloatField(null=True)
    cpu_cores = models.FloatField(null=True)
    memory_mib = models.PositiveBigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["guest", "resolution_s", "at"]), models.Index(fields=["resolution_s", "at"])]

    def __str__(self) -> str:
        return f"{self.guest_id}@{self.at:%H:%M:%S}/{self.resolution_s}s: {self.cpu_pct_of_vcpus}%"
