"""host_info asks a host's unchanging facts once per connection, and again on a new one."""

from hosts.drivers import libvirt as driver
from hosts.drivers.libvirt import connection
from tests.libvirt_nodes import NodeDomain, write_node


def test_unchanging_facts_are_kept_with_the_connection_they_came_from(tmp_path):
    uri = write_node(tmp_path / "host.xml", [], cpus=8, memory_mib=16384)
    first = driver.host_info(uri)
    again = driver.host_info(uri)
    assert (first.cpus, first.memory_total_mib, first.bridges) == (8, 16384, ("br0",))
    assert again == first
    conn, fixed = connection._fixed[uri]
    assert conn is connection.cached(uri)  # the same cached connection answered both
    assert fixed["cpus"] == 8


def test_a_new_connection_asks_again(tmp_path):
    """A restarted or upgraded daemon drops the connection; what it reports then is what counts."""
    path = tmp_path / "host.xml"
    uri = write_node(path, [], cpus=8, memory_mib=16384)
    assert driver.host_info(uri).cpus == 8
    write_node(path, [], cpus=4, memory_mib=8192, bridges=("br0", "br1"))
    driver.forget(uri)  # what the close callback does when the daemon goes away
    assert uri not in connection._fixed
    now = driver.host_info(uri)
    assert (now.cpus, now.memory_total_mib, now.bridges) == (4, 8192, ("br0", "br1"))


def test_bridges_seen_lately_on_the_same_connection_can_stand_in_for_asking_again(tmp_path):
    """The pre-flight at a job's start may take the bridges this process saw on the same connection
    lately (facts.START_BRIDGES_MAX_AGE_S); a new connection, or no age allowed, asks libvirt."""
    path = tmp_path / "host.xml"
    uri = write_node(path, [], bridges=("br0",))
    assert driver.host_info(uri).bridges == ("br0",)
    seen_on, _at, bridges = connection._bridges_seen[uri]
    assert seen_on is connection.cached(uri) and bridges == ("br0",)
    assert driver.host_info(uri, bridges_max_age_s=30).bridges == ("br0",)

    write_node(path, [], bridges=("br0", "br1"))
    driver.forget(uri)  # the daemon went away: what it had is forgotten with the connection
    assert uri not in connection._bridges_seen
    assert driver.host_info(uri, bridges_max_age_s=30).bridges == ("br0", "br1")


def test_domain_names_are_what_list_domains_reports_in_one_call(tmp_path):
    a, b = NodeDomain("dn-a"), NodeDomain("dn-b", running=False)
    uri = write_node(tmp_path / "host.xml", [a, b])
    listed = {(d.name, d.uuid) for d in driver.list_domains(uri)}
    assert set(driver.domain_names(uri)) == listed == {("dn-a", a.uuid), ("dn-b", b.uuid)}
