"""Views of the hosts app: thin, one selector or service call each (see hosts/selectors.py, services/)."""

from hosts.views.guests import guest_detail, guest_ha, guest_list, guest_power
from hosts.views.hypervisors import (
    hypervisor_create,
    hypervisor_delete,
    hypervisor_detail,
    hypervisor_edit,
    hypervisor_health_clear,
    hypervisor_list,
    hypervisor_test_connection,
)
from hosts.views.load import guest_load, hypervisor_load
from hosts.views.storage import storage_create, storage_delete, storage_detail, storage_edit, storage_list
from hosts.views.topology import inventory_refresh, topology

__all__ = [
    "guest_detail",
    "guest_ha",
    "guest_list",
    "guest_load",
    "guest_power",
    "hypervisor_create",
    "hypervisor_delete",
    "hypervisor_detail",
    "hypervisor_edit",
    "hypervisor_health_clear",
    "hypervisor_list",
    "hypervisor_load",
    "hypervisor_test_connection",
    "inventory_refresh",
    "storage_create",
    "storage_delete",
    "storage_detail",
    "storage_edit",
    "storage_list",
    "topology",
]
