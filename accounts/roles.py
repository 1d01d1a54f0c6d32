"""Roles and what they may do: the one table of the project (docs/roles.md explains it).

Each permission is a Django permission on accounts.AuditEvent's content type (see the model's Meta);
each role is a Django Group of the same name, created and kept in sync by a data migration.
"""

from enum import StrEnum


class Perm(StrEnum):
    """Permission strings as `user.has_perm()` and `{{ perms }}` take them."""

    VIEW_CLUSTER = "accounts.view_cluster"  # topology, guests, hypervisors, migrations (read only)
    VIEW_AUDIT = "accounts.view_audit"  # the audit trail and migration history
    REFRESH_INVENTORY = "accounts.refresh_inventory"
    POWER_GUESTS = "accounts.power_guests"  # start / shut down guests
    RUN_MIGRATIONS = "accounts.run_migrations"  # request, cancel and tune guest migrations
    MANAGE_HOSTS = "accounts.manage_hosts"  # hypervisors and storage servers
    MANAGE_USERS = "accounts.manage_users"  # users and their roles
    MANAGE_NOTIFICATIONS = "accounts.manage_notifications"  # webhook and email targets, their delivery log
    MANAGE_BALANCING = "accounts.manage_balancing"  # the load balancer's policy and its per-guest rules

    @property
    def codename(self) -> str:
        return self.value.split(".", 1)[1]


PERMISSION_LABELS: dict[Perm, str] = {
    Perm.VIEW_CLUSTER: "Can view the cluster",
    Perm.VIEW_AUDIT: "Can view the audit trail",
    Perm.REFRESH_INVENTORY: "Can refresh the inventory",
    Perm.POWER_GUESTS: "Can start and stop guests",
    Perm.RUN_MIGRATIONS: "Can run guest migrations",
    Perm.MANAGE_HOSTS: "Can manage hypervisors and storage",
    Perm.MANAGE_USERS: "Can manage users and roles",
    Perm.MANAGE_NOTIFICATIONS: "Can manage notification targets",
    Perm.MANAGE_BALANCING: "Can set the load-balancing policy",
}

_VIEWER = {Perm.VIEW_CLUSTER, Perm.VIEW_AUDIT}
_OPERATOR = _VIEWER | {Perm.REFRESH_INVENTORY, Perm.POWER_GUESTS, Perm.RUN_MIGRATIONS}
_ADMIN = _OPERATOR | {Perm.MANAGE_HOSTS, Perm.MANAGE_USERS, Perm.MANAGE_NOTIFICATIONS, Perm.MANAGE_BALANCING}

ROLES: dict[str, frozenset[Perm]] = {
    "viewer": frozenset(_VIEWER),
    "operator": frozenset(_OPERATOR),
    "admin": frozenset(_ADMIN),
}

# Highest first: a user's role is the first of these whose group they are in.
ROLE_ORDER: tuple[str, ...] = ("admin", "operator", "viewer")
ROLE_LABELS: dict[str, str] = {
    "viewer": "Viewer: sees everything, changes nothing",
    "operator": "Operator: runs guest migrations, refreshes inventory, starts and stops guests",
    "admin": "Admin: everything, plus hypervisors, storage servers, users, notifications and the balancing policy",
}


def sync_role_groups(apps=None, using: str = "default") -> None:
    """Make the Groups match ROLES exactly (idempotent; the data migration and post_migrate call it).

    Works with the historical `apps` of a migration or, when None, the live models. Permissions are
    created here too because Django only creates them after the last migration has run.
    """
    if apps is None:
        from django.apps import apps
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")
    content_type, _ = content_type_model.objects.using(using).get_or_create(app_label="accounts", model="auditevent")
    perms = {}
    for perm in Perm:
        perms[perm], _ = permission_model.objects.using(using).get_or_create(
            content_type=content_type, codename=perm.codename, defaults={"name": PERMISSION_LABELS[perm]}
        )
    for role, granted in ROLES.items():
        group, _ = group_model.objects.using(using).get_or_create(name=role)
        group.permissions.set([perms[p] for p in sorted(granted)])
