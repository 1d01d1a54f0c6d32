"""An encrypted (TLS) live move between the lab's hosts: QEMU really speaks TLS, with the lab's certificates."""

import threading
import time

import pytest

from hosts.drivers import libvirt as driver
from hosts.drivers.types import MigrationFailed, MigrationOptions
from lab import config, security

pytestmark = pytest.mark.once

GUEST = "lab-g2"


def _move(lab, options: MigrationOptions) -> tuple[str, str, set[str]]:
    """Move GUEST to the other host while sampling the source QEMU's tls-creds parameter."""
    src = lab.current_host(GUEST)
    dst = lab.other_host(src)
    uuid = lab.guest_uuids[GUEST]
    seen: set[str] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                seen.add(driver.migration_parameters(lab.uri(src), uuid).get("tls-creds", ""))
            except Exception:  # noqa: BLE001 - the guest leaves the source at the end of the move
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        driver.migrate(lab.uri(src), lab.uri(dst), uuid, options)
    finally:
        done.set()
        sampler.join()
    return src, dst, seen


def _options(tls: bool, dst: str) -> MigrationOptions:
    # A cap long enough to sample QEMU mid-move (16 MiB of guest data at 8 MiB/s), short enough for TCG.
    return MigrationOptions(tls=tls, bandwidth_mibps=8, migration_uri=f"tcp://{config.host(dst).address}")


def test_an_encrypted_move_uses_tls_credentials_in_qemu(lab):
    start = lab.console_offset(GUEST)
    src = lab.current_host(GUEST)
    src, dst, seen = _move(lab, _options(True, lab.other_host(src)))
    assert lab.running_on(GUEST) == [dst]
    assert any(seen), f"QEMU's tls-creds stayed empty during a TLS move: {seen}"
    lab.assert_kept_running(GUEST, start)

    # The same move unencrypted: no TLS credentials in QEMU at any point.
    src, dst, seen = _move(lab, _options(False, src))
    assert lab.running_on(GUEST) == [dst]
    assert seen and not any(seen), seen


def test_an_encrypted_move_to_a_host_without_certificates_fails_before_moving(lab):
    src = lab.current_host(GUEST)
    dst = lab.other_host(src)
    pki = security.pki_dir(lab.paths, config.host(dst))
    hidden = pki.with_name("pki.hidden")
    pki.rename(hidden)
    try:
        with pytest.raises(MigrationFailed) as failed:
            driver.migrate(lab.uri(src), lab.uri(dst), lab.guest_uuids[GUEST], _options(True, dst))
        assert "cert" in failed.value.message.lower(), failed.value.message
        assert lab.running_on(GUEST) == [src]  # refused before the guest left
    finally:
        hidden.rename(pki)
