"""An admin says a hypervisor is set up for encrypted migration; the page shows it."""

import pytest
from django.urls import reverse

from hosts.models import Hypervisor

pytestmark = pytest.mark.django_db


def test_admin_marks_a_host_set_up_for_encrypted_migration(client_as, cluster):
    admin = client_as("admin")
    hv = cluster["hv_a"]
    detail = reverse("hypervisor-detail", args=[hv.pk])
    assert "not set up" in admin.get(detail).content.decode()
    data = {"name": hv.name, "uri": hv.uri, "migration_address": "", "migration_tls": "on", "storage_servers": []}
    assert admin.post(reverse("hypervisor-edit", args=[hv.pk]), data).status_code == 302
    assert Hypervisor.objects.get(pk=hv.pk).migration_tls
    assert "set up (QEMU has migration TLS certificates)" in admin.get(detail).content.decode()
