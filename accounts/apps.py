from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs):
    # Re-sync after every migrate/flush: test databases get flushed, and ROLES may have changed.
    from accounts.roles import sync_role_groups

    if using == "default":
        sync_role_groups(using=using)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts, roles and audit"

    def ready(self):
        from accounts import signals  # noqa: F401 - connects the auth signal receivers

        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="accounts.sync_roles")
