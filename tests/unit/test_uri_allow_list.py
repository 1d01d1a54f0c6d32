"""Which libvirt URIs the driver will open: the allow-list of hosts/drivers/uri.py, part by part."""

import pytest

from hosts.drivers.uri import UriNotAllowed, checked, checked_migration_uri, migration_uri, parse_uri


@pytest.mark.parametrize(
    "uri, opened",
    [
        ("qemu+tcp://10.0.0.2/system", "qemu+tcp://10.0.0.2/system"),
        ("qemu+tls://hv-a.example.org/system", "qemu+tls://hv-a.example.org/system"),
        ("qemu+ssh://root@hv-a/system", "qemu+ssh://root@hv-a/system"),
        (
            "qemu+libssh://admin@hv-a/system?sshauth=privkey,agent",
            "qemu+libssh://admin@hv-a/system?sshauth=privkey,agent",
        ),
        ("qemu+tcp://127.0.55.2:16509/system", "qemu+tcp://127.0.55.2:16509/system"),
        ("qemu+tcp://[::1]/system", "qemu+tcp://[::1]/system"),
        ("qemu+tls://hv-a/system?mode=direct", "qemu+tls://hv-a/system?mode=direct"),
    ],
)
def test_managed_hypervisor_uris_are_accepted_and_rebuilt(uri, opened):
    assert str(parse_uri(uri)) == opened


@pytest.mark.parametrize(
    "uri, part, why",
    [
        ("qemu+ext:///system?command=/tmp/probe", "transport 'ext'", "qemu+tcp"),
        ("qemu+ssh://hv-a/system?command=/tmp/probe", "parameter 'command'", "program"),
        ("qemu+ssh://hv-a/system?netcat=/tmp/probe", "parameter 'netcat'", "program"),
        ("qemu+ssh://hv-a/system?proxy=/tmp/probe", "parameter 'proxy'", "program"),
        ("qemu+tcp://hv-a/system?socket=/run/other.sock", "parameter 'socket'", "Unix socket"),
        ("qemu+tls://hv-a/system?no_verify=1", "parameter 'no_verify'", "certificate"),
        ("qemu+ssh://hv-a/system?keyfile=/root/.ssh/id_rsa", "parameter 'keyfile'", "KVMCLUSTER_LIBVIRT_KEY_DIR"),
        ("qemu+ssh://hv-a/system?known_hosts_verify=ignore", "parameter 'known_hosts_verify'", "host-key"),
        ("qemu+tcp://hv-a/system?name=qemu+ext:///system", "parameter 'name'", "remote daemon"),
        # libvirt splits the query on ";" too, and decodes %-escapes in names and values
        ("qemu+ssh://hv-a/system?mode=auto;command=/tmp/probe", "parameter 'command'", "program"),
        ("qemu+ssh://hv-a/system?comm%61nd=/tmp/probe", "URI", "percent"),
        ("qemu+ssh://hv-a/system?COMMAND=/tmp/probe", "parameter 'command'", "program"),
        ("qemu+ssh://hv-a/system?mode=auto&mode=direct", "parameter 'mode'", "twice"),
        ("qemu+tcp://hv-a/system?whatever=1", "parameter 'whatever'", "not a parameter"),
        ("qemu+unix:///system", "transport 'unix'", "qemu+tcp"),
        ("qemu:///system", "a local URI (no transport)", "qemu+tcp"),
        ("qemu+tcp:///system", "host", "required"),
        ("qemu+ssh://-oProxyCommand=probe/system", "host '-oProxyCommand=probe'", "host name"),
        ("qemu+ssh://-oProxyCommand=probe@hv-a/system", "user '-oProxyCommand=probe'", "user name"),
        ("qemu+tcp://root@hv-a/system", "user 'root'", "ssh only"),
        ("qemu+tcp://hv-a:22/system", "port '22'", "16509"),
        ("qemu+tcp://hv-a/session", "path '/session'", "/system"),
        ("xen+tcp://hv-a/system", "driver 'xen'", "qemu"),
        ("qemu+tcp://hv a/system", "URI", "spaces"),
        ("qemu+tcp://hv-a/system\x00", "URI", "control"),
        ("hv-a", "URI", "not a libvirt URI"),
        ("test:///default", "driver 'test'", "test suite"),
    ],
)
def test_uris_that_run_programs_reach_sockets_or_weaken_checks_are_refused(uri, part, why, settings):
    settings.KVMCLUSTER_ALLOW_TEST_URIS = False
    with pytest.raises(UriNotAllowed) as refused:
        checked(uri)
    assert refused.value.part == part
    assert why in refused.value.reason
    assert refused.value.message.startswith(f"URI not allowed: {part}: ")


def test_key_files_are_allowed_only_under_the_admins_key_directory(settings):
    settings.KVMCLUSTER_LIBVIRT_KEY_DIR = "/etc/kvmcluster/keys"
    uri = "qemu+ssh://root@hv-a/system?keyfile=/etc/kvmcluster/keys/hv-a"
    assert str(parse_uri(uri)) == uri
    for outside in ("/root/.ssh/id_rsa", "/etc/kvmcluster/keys/../../shadow", "keys/hv-a"):
        with pytest.raises(UriNotAllowed, match="must be under /etc/kvmcluster/keys"):
            parse_uri(f"qemu+ssh://root@hv-a/system?keyfile={outside}")


def test_extra_ports_are_an_admin_setting(settings):
    settings.KVMCLUSTER_LIBVIRT_PORTS = [16600]
    assert parse_uri("qemu+tcp://hv-a:16600/system").port == 16600
    with pytest.raises(UriNotAllowed, match="port '8080'"):
        parse_uri("qemu+tcp://hv-a:8080/system")


def test_the_test_driver_only_where_settings_allow_it(settings):
    settings.KVMCLUSTER_ALLOW_TEST_URIS = True
    assert checked("test:///default?b") == "test:///default?b"
    with pytest.raises(UriNotAllowed):
        checked("test+tcp://hv-a/default")


@pytest.mark.parametrize(
    "address, uri", [("10.0.1.2", "tcp://10.0.1.2"), ("::1", "tcp://[::1]"), ("hv-b", "tcp://hv-b")]
)
def test_migration_uris_are_built_from_the_address_only(address, uri):
    assert migration_uri(address) == uri
    assert checked_migration_uri(uri) == uri


@pytest.mark.parametrize(
    "stream", ["tcp://hv-b:1234", "unix:///run/x.sock", "tcp://hv-b/x?y", "rdma://hv-b", "tcp://-x"]
)
def test_migration_uris_other_than_tcp_host_are_refused(stream):
    with pytest.raises(UriNotAllowed):
        checked_migration_uri(stream)
