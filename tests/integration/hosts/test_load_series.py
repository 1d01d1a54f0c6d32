"""Reading measured load back: the finest tier covering the range, and the topology's measured CPU."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.load_selectors import guest_load_series, host_load_series
from hosts.models import Guest, GuestLoadSample, HostLoadSample, Hypervisor

pytestmark = pytest.mark.django_db


def _row(hv, ago, resolution_s, cpu, now):
    return HostLoadSample.objects.create(hypervisor=hv, at=now - ago, resolution_s=resolution_s, cpu_pct=cpu,
                                         memory_used_mib=100, memory_total_mib=200)  # fmt: skip


def test_a_series_comes_from_the_finest_tier_that_covers_the_range(cluster, django_assert_max_num_queries):
    hv, now = cluster["hv_a"], timezone.now()
    _row(hv, timedelta(minutes=30), 10, 11.0, now)
    _row(hv, timedelta(minutes=5), 10, 12.0, now)
    _row(hv, timedelta(hours=5), 60, 21.0, now)
    _row(hv, timedelta(minutes=5), 60, 22.0, now)
    _row(hv, timedelta(days=3), 600, 31.0, now)

    with django_assert_max_num_queries(1):
        hour = host_load_series(hv.pk, now - timedelta(hours=1), now)
    assert (hour.resolution_s, hour.columns["cpu_pct"]) == (10, [11.0, 12.0])
    assert host_load_series(hv.pk, now - timedelta(hours=6), now).columns["cpu_pct"] == [21.0, 22.0]
    week = host_load_series(hv.pk, now - timedelta(days=7), now)
    assert (week.resolution_s, week.columns["cpu_pct"]) == (600, [31.0])
    assert hour.at == sorted(hour.at) and len(hour.at) == len(hour.columns["memory_used_mib"])


def test_a_guest_series(cluster):
    guest, now = Guest.objects.get(name="web01"), timezone.now()
    GuestLoadSample.objects.create(guest=guest, at=now - timedelta(seconds=20), resolution_s=10,
                                   cpu_pct_of_vcpus=80.0, cpu_cores=1.6, memory_mib=900)  # fmt: skip
    series = guest_load_series(guest.pk, now - timedelta(minutes=10), now)
    assert series.as_json()["cpu_pct_of_vcpus"] == [80.0] and series.as_json()["memory_mib"] == [900]


def test_the_topology_shows_measured_cpu_beside_allocation_only_while_it_is_fresh(client_as, cluster):
    hv, now = cluster["hv_a"], timezone.now()
    _row(hv, timedelta(seconds=5), 10, 37.4, now)
    _row(Hypervisor.objects.get(name="hv-b"), timedelta(minutes=5), 10, 90.0, now)  # stale: not shown

    html = client_as("viewer").get(reverse("topology")).content.decode()

    assert f'id="hypervisor-{hv.pk}-cpu-measured">CPU measured 37 %<' in html
    assert html.count("CPU measured") == 1


def test_the_hypervisor_page_charts_the_last_hour_from_a_json_block(client_as, cluster):
    hv, now = cluster["hv_a"], timezone.now()
    _row(hv, timedelta(minutes=2), 10, 41.6, now)
    _row(hv, timedelta(hours=2), 10, 99.0, now)  # outside the hour

    html = client_as("viewer").get(reverse("hypervisor-detail", args=[hv.pk])).content.decode()

    assert "/static/vendor/uPlot-1.6.32.iife.min.js" in html and "/static/js/load-chart.js" in html
    assert f'data-load-chart="hypervisor-{hv.pk}-load-data"' in html
    data = re.search(rf'<script id="hypervisor-{hv.pk}-load-data" type="application/json">(.*?)</script>', html)
    series = json.loads(data.group(1))
    assert (series["resolution_s"], series["cpu_pct"], series["memory_used_mib"]) == (10, [41.6], [100])
    at = now - timedelta(minutes=2)
    caption = "CPU 42 % of the host&#x27;s CPUs, memory in use 100 MiB."
    assert f'<time datetime="{at.isoformat()}">{at:%H:%M:%S}</time>: {caption}' in html
    assert f'ws-connect="/ws/hypervisors/{hv.pk}/load/"' in html  # each new round is pushed (hosts.consumers)


def test_a_hypervisor_without_measurements_says_so(client_as, cluster):
    hv = cluster["hv_a"]
    html = client_as("viewer").get(reverse("hypervisor-detail", args=[hv.pk])).content.decode()
    assert f'id="hypervisor-{hv.pk}-load-latest">No measurements yet' in html
    # the chart waits, hidden, for the first pushed point
    assert re.search(rf'<div class="load-chart" id="hypervisor-{hv.pk}-load-chart"[^>]* hidden', html)


def test_the_guest_page_charts_the_guests_own_load(client_as, cluster):
    guest, now = Guest.objects.get(name="web01"), timezone.now()
    GuestLoadSample.objects.create(guest=guest, at=now - timedelta(seconds=30), resolution_s=10,
                                   cpu_pct_of_vcpus=64.0, cpu_cores=1.28, memory_mib=700)  # fmt: skip

    html = client_as("viewer").get(reverse("guest-detail", args=[guest.pk])).content.decode()

    assert f'data-load-chart="guest-{guest.pk}-load-data"' in html and 'data-cpu="cpu_pct_of_vcpus"' in html
    assert "CPU 64 % of its vCPUs, memory in use 700 MiB." in html
    assert f'ws-connect="/ws/guests/{guest.pk}/load/"' in html


def test_the_charts_poll_the_same_hour_as_json(client_as, cluster):
    hv, now = cluster["hv_a"], timezone.now()
    _row(hv, timedelta(seconds=20), 10, 55.0, now)
    client = client_as("viewer")

    page = client.get(reverse("hypervisor-detail", args=[hv.pk])).content.decode()
    assert f'data-load-url="{reverse("hypervisor-load", args=[hv.pk])}"' in page
    body = client.get(reverse("hypervisor-load", args=[hv.pk])).json()
    assert (body["resolution_s"], body["cpu_pct"], body["memory_total_mib"]) == (10, [55.0], [200])
    assert client.get(reverse("hypervisor-load", args=[99999])).status_code == 404
    guest = Guest.objects.get(name="web01")
    assert client.get(reverse("guest-load", args=[guest.pk])).json()["cpu_pct_of_vcpus"] == []
