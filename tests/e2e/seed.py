"""Seed the e2e server's database (run as a subprocess with the server's environment).

Reads JSON on stdin: {"users": [{"username", "password", "role"}], "storage": [{...StorageServer fields}],
"hypervisors": [{"name", "uri", "storage": [names]}], "host_load": [{"hypervisor", "cpu_pct": [...]}]}, then
reads every hypervisor through inventory, exactly as the worker would, writes each host_load entry as 10 s
load rows ending now (memory from the host's facts), and prints {"guests": {name: pk}, "hypervisors":
{name: pk}} as JSON.
"""

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.roles import sync_role_groups  # noqa: E402
from hosts.models import Guest, HostLoadSample, Hypervisor, StorageServer  # noqa: E402
from hosts.services import inventory  # noqa: E402


def main() -> None:
    spec = json.load(sys.stdin)
    sync_role_groups()
    for u in spec.get("users", []):
        user = User.objects.create_user(u["username"], password=u["password"])
        user.groups.add(Group.objects.get(name=u["role"]))
    servers = {s["name"]: StorageServer.objects.create(**s) for s in spec.get("storage", [])}
    for h in spec.get("hypervisors", []):
        hv = Hypervisor.objects.create(name=h["name"], uri=h["uri"])
        hv.storage_servers.set([servers[n] for n in h.get("storage", [])])
    results = inventory.refresh_all()
    failed = [r for r in results if not r.online]
    if failed:
        sys.exit(f"inventory could not read: {failed}")
    now = timezone.now()
    for entry in spec.get("host_load", []):
        hv = Hypervisor.objects.get(name=entry["hypervisor"])
        values = entry["cpu_pct"]
        HostLoadSample.objects.bulk_create(
            HostLoadSample(hypervisor=hv, at=now - timedelta(seconds=10 * (len(values) - 1 - i)), resolution_s=10,
                           cpu_pct=v, memory_used_mib=hv.memory_used_mib, memory_total_mib=hv.memory_total_mib)
            for i, v in enumerate(values)
        )  # fmt: skip
    print(
        json.dumps(
            {
                "guests": dict(Guest.objects.values_list("name", "pk")),
                "hypervisors": dict(Hypervisor.objects.values_list("name", "pk")),
            }
        )
    )


if __name__ == "__main__":
    main()
