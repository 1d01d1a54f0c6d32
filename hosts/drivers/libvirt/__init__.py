"""The only package that imports libvirt (ruff's banned-api rule enforces it; see docs/driver.md).

Functions take a libvirt URI and a domain UUID, and hand out the frozen dataclasses of
`hosts.drivers.types`; libvirt errors come out as our own exceptions carrying libvirt's message.
No virConnect or virDomain leaves the package. Callers use `from hosts.drivers import libvirt as driver`.

    connection  open (bounded, authenticated), cache, keepalive, the event loop, error context
    errors      libvirt error code -> our exception
    parse       domain XML, capabilities, interfaces -> plain values
    host        host facts, CPU comparisons
    domains     list, look up, power actions, lifecycle events
    load        a host's load counters (CPU, memory, every guest's stats) in one round
    migration   flags, parameters, the move, the monitor, job controls
    dirtyrate   libvirt's page-sampling measurement of a guest's dirty rate
"""

from .connection import KEEPALIVE_COUNT, KEEPALIVE_INTERVAL_S, close_all, forget
from .dirtyrate import dirty_rate, start_dirty_rate_calc
from .domains import (
    Subscription,
    define_and_start,
    destroy,
    domain_names,
    domain_xml,
    find_domain,
    get_domain,
    list_domains,
    resume,
    shutdown,
    start,
    suspend,
    undefine,
    watch_lifecycle,
)
from .host import compare_cpu, compare_guest_cpu, guest_cpu, host_cpu_xml, host_info, probe
from .load import load_sample
from .migration import (
    MigrationMonitor,
    MoveConnection,
    abort_job,
    compression_cache,
    job_stats,
    migrate,
    migration_flags,
    migration_parameters,
    set_max_speed,
    start_postcopy,
)

__all__ = [
    "KEEPALIVE_COUNT",
    "KEEPALIVE_INTERVAL_S",
    "MigrationMonitor",
    "MoveConnection",
    "Subscription",
    "abort_job",
    "close_all",
    "compare_cpu",
    "compare_guest_cpu",
    "compression_cache",
    "define_and_start",
    "destroy",
    "dirty_rate",
    "domain_names",
    "domain_xml",
    "find_domain",
    "forget",
    "get_domain",
    "guest_cpu",
    "host_cpu_xml",
    "host_info",
    "job_stats",
    "list_domains",
    "load_sample",
    "migrate",
    "migration_flags",
    "migration_parameters",
    "probe",
    "resume",
    "set_max_speed",
    "shutdown",
    "start_dirty_rate_calc",
    "start",
    "start_postcopy",
    "suspend",
    "undefine",
    "watch_lifecycle",
]
