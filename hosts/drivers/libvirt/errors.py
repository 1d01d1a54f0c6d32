"""libvirt's errors as ours: one table from libvirt's error code and domain to the exceptions of `types`.

Every libvirt call in this package runs inside `connection.calling()`, which raises what `translate`
returns (libvirt's error chained as `__cause__`), so nothing above the driver ever sees a libvirtError.
"""

from __future__ import annotations

import libvirt

from hosts.drivers.types import (
    DomainNotFound,
    DriverError,
    HostUnreachable,
    LeaseHeld,
    MigrationAborted,
    MigrationFailed,
    OperationInvalid,
    OperationUnsupported,
)

# Errors that mean "the daemon is gone or never answered", whatever call raised them.
UNREACHABLE_CODES = frozenset({libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT})
UNREACHABLE_DOMAINS = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})

# Codes that name one exception whatever the call was; they win over the rules below.
_BY_CODE: dict[int, type[DriverError]] = {
    libvirt.VIR_ERR_NO_DOMAIN: DomainNotFound,
    libvirt.VIR_ERR_NO_SUPPORT: OperationUnsupported,
    libvirt.VIR_ERR_OPERATION_ABORTED: MigrationAborted,
    # "resource busy: Failed to acquire lock: Lease is held by another host" (sanlock, docs/ha.md)
    libvirt.VIR_ERR_RESOURCE_BUSY: LeaseHeld,
}

# libvirt calls its default error handler (printing to stderr) for every error; we raise instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def translate(err: libvirt.libvirtError, uri: str = "", migration: bool = False) -> DriverError:
    """Our exception for a libvirt error. During a migration call every other failure is MigrationFailed
    (the move failed, whichever side said so); elsewhere the daemon being gone is HostUnreachable."""
    code, domain = err.get_error_code(), err.get_error_domain()
    message = err.get_error_message() or str(err)
    if code in _BY_CODE:
        return _BY_CODE[code](message, code, uri)
    if migration:
        return MigrationFailed(message, code, uri)
    if code in UNREACHABLE_CODES or domain in UNREACHABLE_DOMAINS:
        return HostUnreachable(message, code, uri)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return OperationInvalid(message, code, uri)
    return DriverError(message, code, uri)


def drops_connection(err: libvirt.libvirtError, translated: DriverError) -> bool:
    """Whether the cached connection the call used is worth keeping after this error."""
    return isinstance(translated, HostUnreachable) or err.get_error_domain() in UNREACHABLE_DOMAINS


def is_cpu_incompatible(err: DriverError) -> bool:
    """The translated error came from libvirt saying "this host cannot run that CPU"."""
    cause = err.__cause__
    return isinstance(cause, libvirt.libvirtError) and cause.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE
