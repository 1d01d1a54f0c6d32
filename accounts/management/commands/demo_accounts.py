"""`manage.py demo_accounts`: one user per role with a fresh strong password, printed once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.audit import audit_record
from accounts.roles import ROLE_ORDER
from accounts.services import user_create, user_set_role

User = get_user_model()


def strong_password() -> str:
    # 20 url-safe characters, about 120 bits: passes every validator in settings.
    return secrets.token_urlsafe(15)


class Command(BaseCommand):
    help = "Create or reset the users viewer, operator and admin; prints 'role username password' lines."

    def add_arguments(self, parser):
        parser.add_argument("--prefix", default="", help="Username prefix, e.g. 'demo-' gives demo-viewer.")

    def handle(self, *args, prefix, **options):
        lines = []
        for role in reversed(ROLE_ORDER):
            username, password = f"{prefix}{role}", strong_password()
            with transaction.atomic():
                user = User.objects.filter(username=username).first()
                if user is None:
                    user_create(username=username, password=password, role=role, actor=None)
                elif not user.is_active:
                    # An admin deactivated it on purpose; a setup script must not undo that.
                    self.stderr.write(
                        f"{username} was deactivated by an admin: left as it is (not reset, not re-activated). "
                        "Reactivate it on the Users page if you want it back."
                    )
                    continue
                else:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                    if not user.is_superuser:  # a superuser is an admin already
                        user_set_role(user=user, role=role, actor=None)
                    audit_record(action="user.password_reset", params={"username": username, "by": "demo_accounts"})
            lines.append(f"{role} {username} {password}")
        self.stdout.write("\n".join(lines))
