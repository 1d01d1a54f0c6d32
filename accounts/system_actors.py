"""System actors: users the cluster itself acts as (the load balancer), so their actions carry a name.

Most system work (the reconciler, the inventory watcher) settles what a person asked for and writes its
audit rows under that person, or under no one ("system"). The balancer starts guest migrations on its
own, and a job needs a requester who holds `run_migrations` (the worker re-checks it at start), so it is
a real user: in its role's group, with no usable password (it cannot sign in, not even through the
login throttle), made on first use with an audit row. An admin sees it in the users list and can
deactivate it, which stops it acting (its jobs are refused at start, docs/roles.md).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from accounts.services import _set_role_groups

BALANCER = "balancer"
ROLES_OF = {BALANCER: "operator"}


def system_actor(name: str = BALANCER):
    """The system actor `name`, created (operator role, unusable password, audited) if it does not exist."""
    User = get_user_model()
    user = User.objects.filter(username=name).first()
    if user is not None:
        return user
    role = ROLES_OF[name]
    try:
        with transaction.atomic():
            user = User(username=name, first_name="system actor")
            user.set_unusable_password()
            user.save()
            _set_role_groups(user, role)
            audit_record(
                action="user.created",
                params={"username": name, "role": role, "user_id": user.pk, "system_actor": True},
                message=f"system actor {name} created as {role} (it cannot sign in)",
            )
    except IntegrityError:  # made by a concurrent caller
        return User.objects.get(username=name)
    return user
