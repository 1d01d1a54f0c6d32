"""'Encrypted (TLS)' from the form to libvirt's flags: on by default where the hosts are set up for it."""

import uuid

import pytest

from hosts.drivers.libvirt import migration
from hosts.drivers.types import MigrationOptions
from hosts.models import Guest, Hypervisor
from migrations_app import services
from migrations_app.forms import MigrationRequestForm, option_rows
from migrations_app.orchestrator import facts

pytestmark = pytest.mark.django_db


def _guest(tls_source: bool) -> tuple[Guest, Hypervisor]:
    a = Hypervisor.objects.create(name="hv-a", uri="test:///a", migration_tls=tls_source)
    b = Hypervisor.objects.create(name="hv-b", uri="test:///b", migration_tls=True)
    return Guest.objects.create(uuid=uuid.uuid4(), name="g1", hypervisor=a, memory_mib=256), b


def test_the_form_ticks_tls_where_the_source_is_set_up():
    guest, _ = _guest(tls_source=True)
    assert MigrationRequestForm(guest=guest).fields["tls"].initial is True
    Hypervisor.objects.filter(pk=guest.hypervisor_id).update(migration_tls=False)
    guest.refresh_from_db()
    assert not MigrationRequestForm(guest=guest).fields["tls"].initial


@pytest.mark.parametrize("tls_source, expected", [(True, True), (False, False)])
def test_a_request_without_the_option_is_encrypted_where_both_hosts_are_set_up(
    tls_source, expected, monkeypatch, django_user_model
):
    guest, target = _guest(tls_source)
    seen = {}

    def stop(_guest, _target, _kind, opts):
        seen.update(opts)
        raise services.MigrationError("stop here")

    monkeypatch.setattr(facts, "checklist", stop)
    admin = django_user_model.objects.create_superuser("root-admin", password="x")
    with pytest.raises(services.MigrationError, match="stop here"):
        services.migration_request(guest=guest, target=target, kind="live", options={}, actor=admin)
    assert seen["tls"] is expected


def test_tls_sets_libvirts_tls_flag_for_live_moves_only():
    assert migration.migration_flags(MigrationOptions(tls=True)) & migration.libvirt.VIR_MIGRATE_TLS
    assert not migration.migration_flags(MigrationOptions(tls=False)) & migration.libvirt.VIR_MIGRATE_TLS
    assert not migration.migration_flags(MigrationOptions(live=False, tls=True)) & migration.libvirt.VIR_MIGRATE_TLS


def test_the_job_page_words_the_option_as_the_form_does():
    rows = dict(option_rows("live", {**services.OPTION_DEFAULTS, "tls": True}))
    assert rows["Encrypted (TLS)"] == "yes"
    older = {k: v for k, v in services.OPTION_DEFAULTS.items() if k != "tls"}  # a job from before the option
    assert dict(option_rows("live", older))["Encrypted (TLS)"] == "no"
