"""What the browser tests on the real lab share: a lab guest placed on hv-a, the lab registered in the
test server's database with some users, and signing in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

SEED = """
import json, sys
from django.contrib.auth.models import Group, User
from accounts.roles import sync_role_groups
from lab import registry
from hosts.models import Guest, Hypervisor
sync_role_groups()
for name, (role, password) in json.loads(sys.stdin.read()).items():
    User.objects.create_user(name, password=password).groups.add(Group.objects.get(name=role))
registry.register()
print(registry.refresh_inventory())
print(json.dumps({"guests": dict(Guest.objects.values_list("name", "pk")),
                  "hypervisors": dict(Hypervisor.objects.values_list("name", "pk"))}))
"""


def seed_lab(server_env, users: dict[str, tuple[str, str]]) -> dict:
    """Register the lab in the server's database and create `users` (name -> (role, password)).
    Returns the pks: {"guests": {name: pk}, "hypervisors": {name: pk}}."""
    out = server_env.run("manage.py", "shell", "-c", SEED, stdin=json.dumps(users))
    return json.loads(out.strip().splitlines()[-1])


def guest_on_hv_a(guest: str) -> Iterator:
    """The lab up with `guest` running on hv-a (yields the LabHandle); put back on hv-a afterwards,
    where the other tests expect it."""
    import lab as kvmlab
    from hosts.drivers import libvirt as driver
    from hosts.drivers.types import MigrationOptions
    from lab.handle import LabHandle

    try:
        kvmlab.preflight()
    except kvmlab.LabError as exc:
        pytest.skip(f"lab unavailable: {exc}")
    kvmlab.up(wait=True)
    lab = LabHandle()

    def back_to_a() -> None:
        here = lab.current_host(guest)
        if here not in (None, "hv-a"):
            driver.migrate(lab.uri(here), lab.uri("hv-a"), lab.guest_uuids[guest], MigrationOptions(live=True))

    back_to_a()
    lab.wait_heartbeat(guest, timeout=60)
    yield lab
    back_to_a()


def sign_in(context, username: str, password: str):
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))
    return page
