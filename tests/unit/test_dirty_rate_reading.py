"""Reading libvirt's dirty-rate stats, and the one mode the project ever asks for."""

from pathlib import Path

from hosts.drivers.libvirt.dirtyrate import dirty_rate_from

DRIVER = Path(__file__).resolve().parents[2] / "hosts" / "drivers"


def test_a_finished_measurement_gives_its_rate_and_its_start_on_the_hosts_monotonic_clock():
    """QEMU's calc_start_time is seconds of the host's monotonic clock (on the lab: 1795, the host's
    uptime), so it is kept as a number that tells measurements apart, never turned into a date."""
    rate = dirty_rate_from(
        {
            "dirtyrate.calc_status": 2,
            "dirtyrate.calc_start_time": 1795,
            "dirtyrate.calc_period": 2,
            "dirtyrate.megabytes_per_second": 16,
        }
    )
    assert rate.status == "measured" and rate.mib_per_s == 16.0 and rate.period_s == 2
    assert rate.started_s == 1795 and not hasattr(rate, "measured_at")


def test_a_running_or_absent_measurement_has_no_rate():
    assert dirty_rate_from({"dirtyrate.calc_status": 1, "dirtyrate.megabytes_per_second": 9}).mib_per_s is None
    assert dirty_rate_from({}).status == "unstarted"


def test_only_page_sampling_is_ever_asked_for():
    """The dirty-bitmap mode killed a guest's QEMU on the lab: no code may name another mode."""
    for path in DRIVER.rglob("*.py"):
        text = path.read_text()
        assert "DIRTYRATE_MODE_DIRTY_BITMAP" not in text and "DIRTYRATE_MODE_DIRTY_RING" not in text, path
    source = (DRIVER / "libvirt" / "dirtyrate.py").read_text()
    assert "startDirtyRateCalc(seconds, PAGE_SAMPLING)" in source
