"""Which libvirt URIs kvmcluster will open, and the migration URIs it builds (no libvirt import).

A libvirt URI is code, not an address: `qemu+ext:///system?command=/x` runs /x in the process that
opens it, `?socket=` reaches any local Unix socket, `?netcat=`/`?proxy=` choose the program ssh runs,
`?no_verify=1` skips the TLS certificate check, and a host name that starts with "-" is read by ssh
as an option. So every URI is checked here before anything opens it (the form, "Test connection",
inventory, the watcher, the pre-flight and the move all open through the driver, which calls
`parse_uri` first), and what is opened is rebuilt from the checked parts, never the typed text.

libvirt's own parser (virURIParse) percent-decodes query names and values and splits the query on
both "&" and ";", so "comm%61nd=" and "mode=auto;command=" are refused too, by refusing "%" outright
and splitting on both separators ourselves.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings

from .types import DriverError

TRANSPORTS = ("tcp", "tls", "ssh", "libssh")
DEFAULT_PORTS = {"tcp": 16509, "tls": 16514, "ssh": 22, "libssh": 22}
# Parameters that only tune how the client talks to a daemon it was going to reach anyway.
HARMLESS_PARAMS = {"mode": {"auto", "legacy", "direct"}, "no_tty": {"0", "1"}, "sshauth": None}
# Parameters that read a key or certificate file: allowed only under settings.KVMCLUSTER_LIBVIRT_KEY_DIR.
PATH_PARAMS = ("keyfile", "pkipath", "known_hosts")
WHY_REFUSED = {
    "command": "it chooses a program for the server to run",
    "netcat": "it chooses the program ssh runs on the far side",
    "proxy": "it chooses the program that carries the connection",
    "socket": "it chooses a Unix socket, which reaches local services",
    "no_verify": "it turns off the TLS certificate check",
    "known_hosts_verify": "it can turn off the ssh host-key check",
    "name": "it makes the remote daemon open a URI of its own choosing",
    "tls_priority": "it can weaken the TLS ciphers",
}
HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
SCHEME = re.compile(r"(?P<driver>[a-z][a-z0-9]*)(?:\+(?P<transport>[a-z0-9]+))?")
MAX_LENGTH = 255


class UriNotAllowed(DriverError):
    """A URI kvmcluster refuses to open; `part` is what was refused, the message says why."""

    def __init__(self, part: str, reason: str, uri: str = ""):
        self.part, self.reason = part, reason
        super().__init__(f"URI not allowed: {part}: {reason}", None, uri)


@dataclass(frozen=True)
class LibvirtUri:
    """A checked URI. `str()` is what the driver opens, rebuilt from these parts only."""

    driver: str
    transport: str = ""
    user: str = ""
    host: str = ""
    port: int | None = None
    path: str = "/system"
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        scheme = f"{self.driver}+{self.transport}" if self.transport else self.driver
        netloc = (f"{self.user}@" if self.user else "") + _bracketed(self.host)
        if self.port is not None:
            netloc += f":{self.port}"
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{scheme}://{netloc}{self.path}" + (f"?{query}" if query else "")


def allows_test_driver() -> bool:
    """libvirt's test driver reads XML files named in the URI: tests only, never a deployment."""
    return bool(getattr(settings, "KVMCLUSTER_ALLOW_TEST_URIS", False))


def parse_uri(text: str) -> LibvirtUri:
    """Check `text` against the allow-list and return its parts; raise UriNotAllowed naming the part."""
    if not isinstance(text, str) or not text:
        raise UriNotAllowed("URI", "it is empty")
    if len(text) > MAX_LENGTH:
        raise UriNotAllowed("URI", f"it is longer than {MAX_LENGTH} characters", text)
    if any(c.isspace() or not c.isprintable() for c in text):
        raise UriNotAllowed("URI", "it contains spaces or control characters", text)
    if "%" in text:
        raise UriNotAllowed("URI", "percent-escapes are not accepted (libvirt would decode them)", text)
    if "#" in text:
        raise UriNotAllowed("URI", "a #fragment has no meaning here", text)
    scheme, sep, rest = text.partition("://")
    match = SCHEME.fullmatch(scheme)
    if not sep or not match:
        raise UriNotAllowed("URI", "not a libvirt URI such as qemu+tcp://10.0.0.2/system", text)
    driver, transport = match["driver"], match["transport"] or ""
    if driver == "test":
        return _test_uri(text, transport, rest)
    if driver != "qemu":
        raise UriNotAllowed(f"driver '{driver}'", "only the qemu driver is managed", text)
    if transport not in TRANSPORTS:
        what = f"transport '{transport}'" if transport else "a local URI (no transport)"
        raise UriNotAllowed(what, f"use one of {', '.join('qemu+' + t for t in TRANSPORTS)}", text)
    authority, _, tail = rest.partition("/")
    path, _, query = ("/" + tail).partition("?")
    user, host, port = _authority(authority, transport, text)
    if path != "/system":
        raise UriNotAllowed(f"path '{path}'", "only /system (the host's system daemon) is managed", text)
    return LibvirtUri("qemu", transport, user, host, port, path, _params(query, transport, text))


def checked(text: str) -> str:
    """The URI the driver may open for `text` (raises UriNotAllowed)."""
    return text if text.startswith("test:") and allows_test_driver() else str(parse_uri(text))


def migration_uri(address: str) -> str:
    """The tcp:// URI QEMU's migration stream goes to, built from a hypervisor's stored address only."""
    host = address.strip()
    if not _valid_host(host.strip("[]")):
        raise UriNotAllowed(f"migration address '{address}'", "a host name or IP address, without port")
    return f"tcp://{_bracketed(host.strip('[]'))}"


def checked_migration_uri(text: str) -> str:
    """Rebuild a tcp://host migration URI; anything else (another scheme, a port, a query) is refused."""
    scheme, sep, host = text.partition("://")
    if scheme != "tcp" or not sep:
        raise UriNotAllowed(f"migration URI '{text}'", "only tcp://<migration address> is built")
    return migration_uri(host)


def valid_host(host: str) -> bool:
    """A DNS name or an IP literal (IPv6 without brackets); nothing ssh could read as an option."""
    return _valid_host(host)


def _test_uri(text: str, transport: str, rest: str) -> LibvirtUri:
    if not allows_test_driver():
        raise UriNotAllowed("driver 'test'", "libvirt's test driver is enabled for the test suite only", text)
    if transport or not rest.startswith("/"):
        raise UriNotAllowed("test URI", "the test driver is local: test:///default", text)
    path, _, query = rest.partition("?")
    # The test suite tells hosts apart by a bare query word (test:///default?b): keep it verbatim.
    return LibvirtUri("test", path=path, params=((query, ""),) if query else ())


def _authority(authority: str, transport: str, text: str) -> tuple[str, str, int | None]:
    user, at, hostport = authority.rpartition("@")
    if at and (transport not in ("ssh", "libssh") or not USER.fullmatch(user)):
        raise UriNotAllowed(f"user '{user}'", "a user name (letters, digits, . _ -) goes with ssh only", text)
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ("" if not after else None)
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise UriNotAllowed("host", "a host is required (the dashboard manages remote hypervisors)", text)
    if port_text is None or not _valid_host(host):
        raise UriNotAllowed(f"host '{host}'", "a host name or IP address", text)
    if not port_text:
        return user, host, None
    allowed = set(getattr(settings, "KVMCLUSTER_LIBVIRT_PORTS", ())) | {DEFAULT_PORTS[transport]}
    if not port_text.isdigit() or int(port_text) not in allowed:
        listed = ", ".join(str(p) for p in sorted(allowed))
        raise UriNotAllowed(f"port '{port_text}'", f"allowed ports for {transport}: {listed}", text)
    return user, host, int(port_text)


def _params(query: str, transport: str, text: str) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for item in filter(None, re.split(r"[&;]", query)):
        name, _, value = item.partition("=")
        name = name.lower()
        if name in seen:
            raise UriNotAllowed(f"parameter '{name}'", "given twice", text)
        seen[name] = value
        if name in WHY_REFUSED:
            raise UriNotAllowed(f"parameter '{name}'", WHY_REFUSED[name], text)
        if name in PATH_PARAMS:
            _check_key_path(name, value, text)
        elif name in HARMLESS_PARAMS:
            values = HARMLESS_PARAMS[name]
            if values is not None and value not in values:
                raise UriNotAllowed(f"parameter '{name}'", f"one of {', '.join(sorted(values))}", text)
            if name == "sshauth" and not re.fullmatch(r"[a-z,]+", value):
                raise UriNotAllowed(f"parameter '{name}'", "a list of ssh auth methods", text)
        else:
            raise UriNotAllowed(f"parameter '{name}'", "not a parameter kvmcluster passes to libvirt", text)
    return tuple(seen.items())


def _check_key_path(name: str, value: str, text: str) -> None:
    key_dir = getattr(settings, "KVMCLUSTER_LIBVIRT_KEY_DIR", "")
    if not key_dir:
        raise UriNotAllowed(f"parameter '{name}'", "key files are off (an admin sets KVMCLUSTER_LIBVIRT_KEY_DIR)", text)
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or not path.is_relative_to(PurePosixPath(key_dir)):
        raise UriNotAllowed(f"parameter '{name}'", f"the file must be under {key_dir}", text)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOST.fullmatch(host)) and len(host) <= 253


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
