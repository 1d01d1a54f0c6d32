from django.apps import AppConfig


class MigrationsAppConfig(AppConfig):
    name = "migrations_app"
    verbose_name = "Guest migrations"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        post_spawn.connect(_reconcile_on_worker_start, dispatch_uid="migrations-reconcile-on-start")
        post_spawn.connect(_warm_worker, dispatch_uid="migrations-warm-worker")


def _warm_worker(sender, proc_name=None, **kwargs) -> None:
    from migrations_app.orchestrator.warmup import warm

    warm()


def _reconcile_on_worker_start(sender, proc_name=None, **kwargs) -> None:
    """A (re)started worker may be replacing one that died mid-move: settle what it left behind.
    Enqueued rather than run here so a slow libvirt host never delays the worker's readiness."""
    import logging

    try:
        from django_q.tasks import async_task

        async_task("migrations_app.tasks.reconcile", task_name="migrations-reconcile-on-start")
    except Exception:  # noqa: BLE001 - the minute schedule will do it anyway
        logging.getLogger(__name__).exception("could not enqueue the reconciler at worker start")
