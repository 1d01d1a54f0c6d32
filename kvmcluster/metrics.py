"""`/metrics` for Prometheus (prometheus-client), computed from the database at each scrape.

The worker does the moves and the refreshes, the web process serves the endpoint: reading the figures
from the tables both write (jobs, hosts, guests, audit rows) gives every process's work without the
client's multiprocess mode and its shared directory. Each scrape costs a handful of aggregate queries,
independent of the number of rows.

Access: a bearer token (KVMCLUSTER_METRICS_TOKEN) or a client address in KVMCLUSTER_METRICS_ALLOW
(comma list of addresses/networks, default loopback only); anything else is a 403 with the reason.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Q, Sum
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.utils import floatToGoString

from accounts.audit import request_ip

DURATION_BUCKETS_S = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
DOWNTIME_BUCKETS_MS = (10, 50, 100, 200, 300, 500, 1000, 2000, 5000)
BYTES_BUCKETS = tuple(2**n for n in range(20, 38, 2))  # 1 MiB .. 64 GiB


def _histogram(name: str, doc: str, qs, field: str, buckets, scale: float = 1.0) -> HistogramMetricFamily:
    """A Prometheus histogram per kind of move, from one aggregate query per kind: cumulative counts
    per bucket, the count and the sum."""
    from migrations_app.choices import Kind

    family = HistogramMetricFamily(name, doc, labels=["kind"])
    for kind in Kind.values:
        base = qs.filter(kind=kind, **{f"{field}__isnull": False})
        agg = base.aggregate(
            n=Count("pk"),
            total=Sum(field),
            **{f"le{i}": Count("pk", filter=Q(**{f"{field}__lte": b * scale})) for i, b in enumerate(buckets)},
        )
        points = [(floatToGoString(b), agg[f"le{i}"]) for i, b in enumerate(buckets)] + [("+Inf", agg["n"])]
        family.add_metric([kind], points, sum_value=(agg["total"] or 0) / scale)
    return family


class ClusterCollector:
    """Reads the tables on each collect() (prometheus-client calls it per scrape)."""

    def collect(self):
        from accounts.models import AuditEvent
        from hosts.models import Guest, Hypervisor
        from migrations_app.choices import ACTIVE_STATES, TERMINAL_STATES
        from migrations_app.models import MigrationJob

        done = CounterMetricFamily(
            "kvmcluster_migrations", "Finished guest migrations by kind and outcome.", labels=["kind", "outcome"]
        )
        finished = MigrationJob.objects.filter(state__in=[s.value for s in TERMINAL_STATES])
        for row in finished.values("kind", "state").annotate(n=Count("pk")).order_by():
            done.add_metric([row["kind"], row["state"]], row["n"])
        yield done

        active = GaugeMetricFamily(
            "kvmcluster_migrations_active", "Guest migrations not finished, by state.", labels=["state"]
        )
        counts = dict(
            MigrationJob.objects.filter(state__in=[s.value for s in ACTIVE_STATES])
            .values_list("state")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for state in sorted(s.value for s in ACTIVE_STATES):
            active.add_metric([state], counts.get(state, 0))
        yield active

        ok = MigrationJob.objects.filter(state="succeeded")
        yield _histogram(
            "kvmcluster_migration_duration_seconds",
            "Succeeded moves, request to verified.",
            ok,
            "total_ms",
            DURATION_BUCKETS_S,
            scale=1000,
        )
        yield _histogram(
            "kvmcluster_migration_downtime_milliseconds",
            "Succeeded live moves' downtime.",
            ok,
            "downtime_ms",
            DOWNTIME_BUCKETS_MS,
        )
        yield _histogram(
            "kvmcluster_migration_sent_bytes", "Bytes sent by succeeded moves.", ok, "data_sent", BYTES_BUCKETS
        )

        hosts = GaugeMetricFamily("kvmcluster_hypervisors", "Hypervisors by state.", labels=["state"])
        by_state = dict(Hypervisor.objects.values_list("state").annotate(n=Count("pk")).order_by())
        for state in Hypervisor.State.values:
            hosts.add_metric([state], by_state.get(state, 0))
        yield hosts

        guests = GaugeMetricFamily(
            "kvmcluster_guests", "Guests per hypervisor and power state.", labels=["hypervisor", "power"]
        )
        for row in Guest.objects.values("hypervisor__name", "power").annotate(n=Count("pk")).order_by():
            guests.add_metric([row["hypervisor__name"], row["power"]], row["n"])
        yield guests

        audit = CounterMetricFamily("kvmcluster_audit_rows", "Rows in the append-only audit trail.")
        audit.add_metric([], AuditEvent.objects.count())
        yield audit
        yield from _inventory_refreshes()
        yield _websockets()
        yield from _deliveries()


def _deliveries():
    """Notification deliveries (webhook and email) from their log: ended ones by outcome, and those waiting."""
    from notifications.models import Delivery, Target

    rows = Delivery.objects.values("target__kind", "status").annotate(n=Count("pk")).order_by()
    counts = {(row["target__kind"], row["status"]): row["n"] for row in rows}
    ended = CounterMetricFamily(
        "kvmcluster_webhook_deliveries",
        "Notification deliveries that ended, by kind (webhook, email) and outcome (delivered, failed).",
        labels=["kind", "outcome"],
    )
    waiting = GaugeMetricFamily(
        "kvmcluster_webhook_deliveries_pending", "Notification deliveries waiting for an attempt.", labels=["kind"]
    )
    for kind in Target.Kind.values:
        for outcome in (Delivery.Status.DELIVERED, Delivery.Status.FAILED):
            ended.add_metric([kind, outcome.value], counts.get((kind, outcome.value), 0))
        waiting.add_metric([kind], counts.get((kind, Delivery.Status.PENDING.value), 0))
    yield ended
    yield waiting


def _inventory_refreshes():
    """From the row the inventory service keeps per host (hosts.InventoryRefreshStats): the worker's
    watcher does the refreshes, this process only reads what it wrote."""
    from hosts.models import InventoryRefreshStats

    took = SummaryMetricFamily(
        "kvmcluster_inventory_refresh_seconds", "Inventory refreshes of each hypervisor and the time they took.",
        labels=["hypervisor"],
    )  # fmt: skip
    failed = CounterMetricFamily(
        "kvmcluster_inventory_refresh_failures",
        "Inventory refreshes that could not reach the hypervisor's libvirt.",
        labels=["hypervisor"],
    )
    last = GaugeMetricFamily(
        "kvmcluster_inventory_refresh_last_seconds", "How long each hypervisor's last refresh took.",
        labels=["hypervisor"],
    )  # fmt: skip
    rows = InventoryRefreshStats.objects.values_list(
        "hypervisor__name", "refreshes", "failures", "duration_ms_total", "last_duration_ms"
    ).order_by("hypervisor__name")
    for name, refreshes, failures, total_ms, last_ms in rows:
        took.add_metric([name], count_value=refreshes, sum_value=total_ms / 1000)
        failed.add_metric([name], failures)
        last.add_metric([name], last_ms / 1000)
    yield from (took, failed, last)


def _websockets() -> GaugeMetricFamily:
    """Counted in this process (accounts.consumers): right for the one web process that both holds the
    sockets and serves /metrics; with several web processes each reports its own (docs/metrics.md)."""
    from accounts.consumers import open_sockets

    family = GaugeMetricFamily(
        "kvmcluster_websocket_connections", "Open websocket connections in this web process, by consumer.",
        labels=["consumer"],
    )  # fmt: skip
    for consumer, n in sorted(open_sockets().items()):
        family.add_metric([consumer], n)
    return family


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ClusterCollector())


def _allowed(request) -> tuple[bool, str]:
    token = getattr(settings, "KVMCLUSTER_METRICS_TOKEN", "")
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].encode(), token.encode()):
        return True, ""
    ip = request_ip(request)
    for net in getattr(settings, "KVMCLUSTER_METRICS_ALLOW", ["127.0.0.0/8", "::1/128"]):
        try:
            if ip and ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False):
                return True, ""
        except ValueError:
            continue
    return False, "metrics need the bearer token (KVMCLUSTER_METRICS_TOKEN) or an address in KVMCLUSTER_METRICS_ALLOW"


@login_not_required  # Prometheus has no session: the token or the address decides
@require_GET
def metrics_view(request):
    allowed, reason = _allowed(request)
    if not allowed:
        return HttpResponse(reason, status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
