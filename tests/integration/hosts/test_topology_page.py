"""An operator opens the home page and sees storage -> hypervisors -> guests, and the guest table."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosts.selectors import CHIPS_PER_HOST
from tests.factories import add_guest

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("topology"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_user_without_role_is_refused(client_as):
    assert client_as(None).get(reverse("topology")).status_code == 403


def test_viewer_sees_the_picture_and_the_table(client_as, cluster):
    response = client_as("viewer").get(reverse("topology"))
    html = response.content.decode()

    assert response.status_code == 200
    assert f'id="storage-{cluster["nfs"].pk}-node"' in html
    assert f'id="hypervisor-{cluster["hv_a"].pk}-card"' in html
    assert "2/8 vCPU · 25%" in html  # CPU bar text
    assert "16 GiB/32 GiB · 50%" in html  # memory bar text
    assert "Connection refused" in html  # the offline host's last error is shown
    assert f'id="guest-{cluster["web"].pk}-chip"' in html
    assert f'id="guest-{cluster["db"].pk}-row"' in html
    assert "not shared: vda" in html and "cache: vda=writeback" in html  # db01's local, cached disk
    assert 'ws-connect="/ws/topology/"' in html
    assert "Refresh inventory" not in html  # viewers may not refresh
    assert "hx-swap-oob" not in html  # only pushes carry oob markers


def test_operator_sees_refresh_button_and_admin_add(client_as, cluster):
    html = client_as("admin").get(reverse("topology")).content.decode()
    assert "Refresh inventory" in html and reverse("hypervisor-create") in html


def test_picture_caps_chips_and_links_to_the_host(client_as, cluster):
    for i in range(CHIPS_PER_HOST + 3):
        add_guest(cluster["hv_a"], f"bulk{i:02d}")
    html = client_as("viewer").get(reverse("topology")).content.decode()
    assert len(re.findall(r'id="guest-\d+-chip"', html)) == CHIPS_PER_HOST
    total = CHIPS_PER_HOST + 3 + 2
    assert f"+{total - CHIPS_PER_HOST} more" in html


def test_table_filters_sorts_and_pages(client_as, cluster):
    for i in range(120):
        add_guest(cluster["hv_a"], f"node{i:03d}", power="running" if i % 2 else "paused")
    client = client_as("viewer")

    first = client.get(reverse("guest-list")).content.decode()
    assert "Page 1 of 2" in first and "?page=2" in first

    paused = client.get(reverse("guest-list"), {"state": "paused", "q": "node0"}).content.decode()
    assert "node000" in paused and "node001" not in paused

    desc = client.get(reverse("guest-list"), {"sort": "-name"}).content.decode()
    assert desc.index(">web01<") < desc.index(">node119<") < desc.index(">node021<")
    assert ">node000<" not in desc  # on page 2
    assert 'aria-sort="descending"' in desc


def test_bad_filter_values_are_ignored_not_500(client_as, cluster):
    response = client_as("viewer").get(reverse("guest-list"), {"host": "abc", "state": "exploded", "page": "x"})
    assert response.status_code == 200 and "web01" in response.content.decode()


def test_htmx_table_request_returns_only_the_table(client_as, cluster):
    response = client_as("viewer").get(
        reverse("topology"), {"state": "shutoff"}, headers={"HX-Request": "true", "HX-Target": "guest-table"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="guest-table"')
    assert "db01" in html and "web01" not in html and "<html" not in html


def test_query_count_does_not_grow_with_the_cluster(client_as, cluster):
    client = client_as("viewer")
    client.get(reverse("topology"))  # warm the session and permission caches alike for both runs

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("topology")).status_code == 200
        return len(ctx.captured_queries)

    small = count()
    for i in range(60):
        add_guest(cluster["hv_a" if i % 2 else "hv_b"], f"more{i:02d}", disk=f"/var/lib/libvirt/images/m{i}.qcow2")
    assert count() == small


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _unbalanced(html: str) -> list[str]:
    """Tags closed without being open (or left open): the browser would re-parent what follows."""
    from html.parser import HTMLParser

    problems, stack = [], []

    class Checker(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in VOID:
                stack.append(tag)

        def handle_endtag(self, tag):
            if stack and stack[-1] == tag:
                stack.pop()
            else:
                problems.append(f"</{tag}> while <{stack[-1] if stack else '-'}> is open")

    Checker().feed(html)
    return problems + [f"<{t}> never closed" for t in stack]


def test_page_and_pushed_partials_are_well_formed(client_as, cluster):
    from hosts import events

    html = client_as("viewer").get(reverse("topology")).content.decode()
    assert _unbalanced(html.split("<body", 1)[1].rsplit("</body>", 1)[0].split(">", 1)[1]) == []
    assert _unbalanced(events.render_topology_push()) == []
    push = events.render_topology_push(hypervisor_ids=[cluster["hv_a"].pk], guest_ids=[cluster["web"].pk])
    assert _unbalanced(push) == []


def test_poll_fallback_returns_the_picture_and_totals(client_as, cluster):
    response = client_as("viewer").get(
        reverse("topology"), headers={"HX-Request": "true", "HX-Target": "topology-graph"}
    )
    html = response.content.decode()
    assert html.count('id="topology-graph"') == 1 and 'id="topology-summary"' in html
    assert 'id="topology-summary" aria-label="Cluster totals" hx-swap-oob="true"' in html  # swapped by id
    assert f'id="hypervisor-{cluster["hv_a"].pk}-card"' in html and "<html" not in html


def test_both_chip_queries_pick_the_same_first_guests(cluster):
    from hosts import selectors

    for i in range(12):
        add_guest(cluster["hv_a"], f"g{(i * 7) % 12:02d}")
    ids = [cluster["hv_a"].pk, cluster["hv_b"].pk]  # hv-b has no guests
    union = selectors._first_guests_union(ids, 8)
    window = selectors._first_guests_window(ids, 8)
    assert [r[:2] for r in union] == [r[:2] for r in window]
    assert [r[1] for r in union] == ["db01", "g00", "g01", "g02", "g03", "g04", "g05", "g06"]
