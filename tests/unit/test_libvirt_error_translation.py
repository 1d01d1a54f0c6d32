"""libvirt's errors become ours (hosts/drivers/libvirt/errors.py); only the libvirt error object is faked.

See docs/driver.md, "How errors translate".
"""

import pytest

from hosts.drivers.libvirt import connection, errors
from hosts.drivers.types import (
    DomainNotFound,
    DriverError,
    HostUnreachable,
    MigrationAborted,
    MigrationFailed,
    OperationInvalid,
    OperationUnsupported,
)

lv = errors.libvirt  # the binding's constants, through the one package allowed to import it


class FakeLibvirtError(lv.libvirtError):
    """A libvirtError with a chosen code and domain (a real one reads them from libvirt's last error)."""

    def __init__(self, code: int, domain: int = 0, message: str = "libvirt says no"):
        Exception.__init__(self, message)
        self._code, self._domain, self._message = code, domain, message

    def get_error_code(self):
        return self._code

    def get_error_domain(self):
        return self._domain

    def get_error_message(self):
        return self._message


@pytest.mark.parametrize(
    ("code", "domain", "migration", "expected"),
    [
        (lv.VIR_ERR_NO_DOMAIN, 0, False, DomainNotFound),
        (lv.VIR_ERR_NO_DOMAIN, 0, True, DomainNotFound),  # these three win whatever the call was
        (lv.VIR_ERR_NO_SUPPORT, 0, True, OperationUnsupported),
        (lv.VIR_ERR_OPERATION_ABORTED, 0, True, MigrationAborted),
        (lv.VIR_ERR_RPC, 0, True, MigrationFailed),  # during a move, the rest is "the move failed"
        (lv.VIR_ERR_OPERATION_INVALID, 0, True, MigrationFailed),
        (lv.VIR_ERR_SYSTEM_ERROR, 0, False, HostUnreachable),
        (lv.VIR_ERR_RPC, 0, False, HostUnreachable),
        (lv.VIR_ERR_NO_CONNECT, 0, False, HostUnreachable),
        (lv.VIR_ERR_INTERNAL_ERROR, lv.VIR_FROM_REMOTE, False, HostUnreachable),
        (lv.VIR_ERR_INTERNAL_ERROR, lv.VIR_FROM_RPC, False, HostUnreachable),
        (lv.VIR_ERR_OPERATION_INVALID, 0, False, OperationInvalid),
        (lv.VIR_ERR_INTERNAL_ERROR, lv.VIR_FROM_QEMU, False, DriverError),
    ],
)
def test_each_error_gets_its_exception(code, domain, migration, expected):
    err = errors.translate(FakeLibvirtError(code, domain), "qemu+tcp://127.0.0.1/system", migration)
    assert type(err) is expected
    assert (err.message, err.code, err.uri) == ("libvirt says no", code, "qemu+tcp://127.0.0.1/system")


def test_a_message_less_error_falls_back_to_its_text():
    err = FakeLibvirtError(lv.VIR_ERR_INTERNAL_ERROR, message="")
    assert errors.translate(err).message == str(err)


class FakeConnection:
    closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def cached_connection():
    uri = "test:///unit-translation"
    conn = FakeConnection()
    connection._cache[uri] = conn
    yield uri, conn
    connection._cache.pop(uri, None)


def test_calling_raises_ours_with_libvirts_error_as_the_cause(cached_connection):
    uri, conn = cached_connection
    original = FakeLibvirtError(lv.VIR_ERR_NO_DOMAIN)
    with pytest.raises(DomainNotFound) as caught, connection.calling(uri):
        raise original
    assert caught.value.__cause__ is original
    assert connection._cache[uri] is conn and not conn.closed  # the connection is fine: kept


def test_an_unreachable_host_drops_the_cached_connection(cached_connection):
    uri, conn = cached_connection
    with pytest.raises(HostUnreachable), connection.calling(uri):
        raise FakeLibvirtError(lv.VIR_ERR_SYSTEM_ERROR)
    assert uri not in connection._cache and conn.closed


def test_a_failed_move_over_a_broken_rpc_also_drops_it(cached_connection):
    uri, conn = cached_connection
    with pytest.raises(MigrationFailed), connection.calling(uri, migration=True):
        raise FakeLibvirtError(lv.VIR_ERR_INTERNAL_ERROR, lv.VIR_FROM_RPC)
    assert uri not in connection._cache and conn.closed


def test_cpu_incompatibility_is_recognised_from_the_cause():
    original = FakeLibvirtError(lv.VIR_ERR_CPU_INCOMPATIBLE)
    err = errors.translate(original)
    err.__cause__ = original
    assert errors.is_cpu_incompatible(err)
    assert not errors.is_cpu_incompatible(DriverError("other"))
