"""Measured load on the real hosts: QEMU reports everything the test driver lacks, in one round per host."""

import time

import pytest

from hosts import load
from hosts.drivers import libvirt as driver

pytestmark = pytest.mark.once


def test_a_qemu_host_reports_node_and_guest_counters_in_one_round(lab):
    for host_name, uri in lab.uris.items():
        sample = driver.load_sample(uri)
        assert sample.missing == (), f"{host_name}: {sample.missing}"
        assert sample.cpus > 0 and 0 < sample.memory_free_kib < sample.memory_total_kib
        running = {g.uuid: g for g in sample.guests}
        for name in lab.running_guests:
            if host_name not in lab.running_on(name):  # shut off, or running on the other host
                continue
            g = running[lab.guest_uuids[name]]
            assert g.state == "running" and g.vcpus and g.cpu_time_ns and g.memory_kib, (name, g)


def test_two_samples_give_host_and_guest_cpu_figures(lab):
    name = next(n for n in lab.running_guests if lab.running_on(n))
    uri = lab.uri(lab.running_on(name)[0])
    uuid = lab.guest_uuids[name]
    before = driver.load_sample(uri)
    time.sleep(2)
    after = driver.load_sample(uri)

    pct = load.host_cpu_pct(before, after)
    assert pct is not None and 0.0 <= pct <= 100.0
    g0 = next(g for g in before.guests if g.uuid == uuid)
    g1 = next(g for g in after.guests if g.uuid == uuid)
    cpu = load.guest_cpu(g0, g1, (after.at_ns - before.at_ns) / 1e9)
    assert cpu is not None and cpu.cores > 0  # the lab guests write a heartbeat every second
    assert 0 < load.guest_pct_of_host(cpu, after.cpus) <= 100
