from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Cluster inventory"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        post_spawn.connect(_watch_on_worker_start, dispatch_uid="hosts-watch-on-worker-start")


def _watch_on_worker_start(sender, proc_name=None, **kwargs) -> None:
    """Start the inventory watcher with the worker, so the topology is live from the first second
    instead of from the scheduler's first look (~30 s after start). Every worker process asks; the
    lease lets one run (the others return at once without chaining)."""
    from kvmcluster.worker_start import enqueue_at_worker_start

    enqueue_at_worker_start("hosts.tasks.watch_inventory", "inventory-watcher")
