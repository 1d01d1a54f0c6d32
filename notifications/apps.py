from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from notifications import receivers  # noqa: F401 - connects to the hosts and migrations_app signals
