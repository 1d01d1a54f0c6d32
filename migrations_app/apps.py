from django.apps import AppConfig


class MigrationsAppConfig(AppConfig):
    name = "migrations_app"
    verbose_name = "Guest migrations"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        post_spawn.connect(_reconcile_on_worker_start, dispatch_uid="migrations-reconcile-on-start")
        post_spawn.connect(_warm_worker, dispatch_uid="migrations-warm-worker")

        from hosts.signals import hypervisor_health_changed
        from migrations_app.services.recovery import on_health_changed

        hypervisor_health_changed.connect(on_health_changed, dispatch_uid="migrations-recover-failed-host")


def _warm_worker(sender, proc_name=None, **kwargs) -> None:
    from migrations_app.orchestrator.warmup import warm

    warm()


def _reconcile_on_worker_start(sender, proc_name=None, **kwargs) -> None:
    """A (re)started worker may be replacing one that died mid-move: settle what it left behind."""
    from kvmcluster.worker_start import enqueue_at_worker_start

    enqueue_at_worker_start("migrations_app.tasks.reconcile", "migrations-reconcile-on-start")
