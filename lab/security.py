"""What keeps the lab from being a way into the machine: a private state directory, SASL credentials
for the two libvirtd, and the CA + certificates their QEMUs use for encrypted (TLS) migration.

Only root may use the lab. The state directory is root-owned 0700, so whatever is inside (the SASL
password, the CA key, guest disks and consoles) is root's alone; `up` refuses a directory that is not.
libvirtd listens on TCP (the dashboard stores plain `qemu+tcp://` URIs) with `auth_tcp = "sasl"`:
DIGEST-MD5, because libvirt demands a SASL security layer (SSF >= 56) on a connection that is not TLS,
and SCRAM has none (libvirtd answers "no SASL mechanisms are available"); GSSAPI would need a KDC.
Clients find the password in `<lab>/auth.conf` (0600) through LIBVIRT_AUTH_FILE; so does each libvirtd
for its peer-to-peer migrations.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import stat
from pathlib import Path

from .config import HOSTS, HostSpec, Paths
from .procs import LabError, run

SASL_USER = "kvmlab"
AUTH_FILE_ENV = "LIBVIRT_AUTH_FILE"


# ---------------------------------------------------------------------------------- directory


def ensure_private_root(p: Paths) -> None:
    """Create the state directory 0700, or refuse one that anyone but root could read or replace.

    /tmp is world-writable: another user could have made /tmp/kvmlab first (or a symlink there) and
    would then read the credentials or swap the guests' kernel."""
    try:
        p.root.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    st = os.lstat(p.root)
    problems = []
    if stat.S_ISLNK(st.st_mode):
        problems.append("is a symlink")
    elif not stat.S_ISDIR(st.st_mode):
        problems.append("is not a directory")
    if st.st_uid != 0:
        problems.append(f"is owned by uid {st.st_uid}, not root")
    if stat.S_IMODE(st.st_mode) & 0o077:
        problems.append(f"has mode {stat.S_IMODE(st.st_mode):04o}, not 0700")
    if problems:
        raise LabError(
            f"lab directory {p.root} {' and '.join(problems)}: anyone who can read it can use the lab. "
            f"Fix: `chown root:root {p.root} && chmod 0700 {p.root}` (or remove it, or set KVMLAB_DIR)"
        )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------------------- SASL

AUTH_CONF = """\
# libvirt client credentials for the kvmcluster lab (read through LIBVIRT_AUTH_FILE). Root only.
[credentials-kvmlab]
authname={user}
password={password}

{sections}
"""


def auth_file(p: Paths) -> Path:
    return p.root / "auth.conf"


def password(p: Paths) -> str:
    """The lab's SASL password, made once per state directory and kept in the auth file."""
    f = auth_file(p)
    if f.exists():
        for line in f.read_text().splitlines():
            if line.startswith("password="):
                return line.split("=", 1)[1]
    return secrets.token_urlsafe(24)


def ensure_credentials(p: Paths) -> None:
    # One section per lab host (libvirt matches `auth-<service>-<hostname>`), so this file hands the
    # password to the lab's daemons only, whatever else the process connects to.
    sections = "\n".join(f"[auth-libvirt-{h.address}]\ncredentials=kvmlab\n" for h in HOSTS)
    _write_private(auth_file(p), AUTH_CONF.format(user=SASL_USER, password=password(p), sections=sections))


def sasl_db(p: Paths, h: HostSpec) -> Path:
    return p.host_dir(h.name) / "etc/passwd.db"


def write_sasl_db(p: Paths, h: HostSpec) -> None:
    """The host's SASL user database (saslpasswd2, from sasl2-bin), in the realm libvirtd uses: its
    hostname, which is the host's name inside its UTS namespace."""
    db = sasl_db(p, h)
    db.unlink(missing_ok=True)
    run(["saslpasswd2", "-p", "-c", "-a", "libvirt", "-u", h.name, "-f", str(db), SASL_USER], input=password(p))
    os.chmod(db, 0o600)


def sasl_conf(p: Paths, h: HostSpec) -> str:
    """/etc/sasl2/libvirt.conf inside the host's namespace."""
    return f"mech_list: digest-md5\nsasldb_path: {sasl_db(p, h)}\n"


def client_env(p: Paths) -> dict[str, str]:
    return {AUTH_FILE_ENV: str(auth_file(p))}


def use_credentials(p: Paths) -> None:
    """Point this process's libvirt connections (and the virsh it runs) at the lab's auth file."""
    os.environ.setdefault(AUTH_FILE_ENV, str(auth_file(p)))


# ---------------------------------------------------------------------------------------- TLS


def pki_dir(p: Paths, h: HostSpec) -> Path:
    """The host's QEMU certificate directory (qemu.conf migrate_tls_x509_cert_dir)."""
    return p.host_dir(h.name) / "pki"


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kvmcluster lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    # RSA: QEMU (GnuTLS) checks the keyEncipherment usage bit, which only fits an RSA key.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def _pem_cert(cert) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _issue(subject_key, issuer_key, issuer_name, common_name: str, *, ca: bool = False, sans=(), purpose=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name or _name(common_name))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if purpose is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def ensure_certificates(p: Paths) -> bool:
    """A lab CA and, per host, a server and a client certificate in the layout QEMU reads
    (ca-cert.pem, server-cert.pem/-key.pem, client-cert.pem/-key.pem). Made once; True if made now.

    The server certificate names the host's migration address (QEMU checks the address it connects to
    against it) and its name; with migrate_tls_x509_verify=1 the receiving QEMU also demands the
    sender's client certificate, so nothing but a lab host can feed it a migration stream."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    wanted = [pki_dir(p, h) / f for h in HOSTS for f in ("ca-cert.pem", "server-cert.pem", "client-cert.pem")]
    if all(f.exists() for f in wanted):
        return False
    ca_key = _key()
    ca_cert = _issue(ca_key, ca_key, None, "kvmcluster lab CA", ca=True)
    _write_private(p.root / "pki/ca-key.pem", _pem_key(ca_key))
    for h in HOSTS:
        d = pki_dir(p, h)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        (d / "ca-cert.pem").write_text(_pem_cert(ca_cert))
        sans = (x509.DNSName(h.name), x509.IPAddress(ipaddress.ip_address(h.address)))
        for role, purpose in (("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
            key = _key()
            cert = _issue(key, ca_key, ca_cert.subject, h.name, sans=sans, purpose=purpose)
            _write_private(d / f"{role}-key.pem", _pem_key(key))
            (d / f"{role}-cert.pem").write_text(_pem_cert(cert))
    return True
