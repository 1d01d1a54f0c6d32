"""django-q2 entry points for inventory. Thin: one call into hosts.services each."""

from django_q.tasks import async_task

from hosts.services import dirty_rates, inventory, watcher

# Short, so a worker asked to stop finishes its current chunk quickly (its successor waits in the queue).
WATCHER_CHUNK_SECONDS = 10


def refresh_inventory(hypervisor_ids: list[int] | None = None) -> list[str]:
    return [f"{r.hypervisor}: {'online' if r.online else r.error}" for r in inventory.refresh_all(hypervisor_ids)]


def watch_inventory() -> int:
    rounds = watcher.run_watcher(duration_s=WATCHER_CHUNK_SECONDS)
    if rounds:  # we held the lease: hand over to the next chunk (a no-op run did not, so no chain forks)
        async_task("hosts.tasks.watch_inventory", task_name="inventory-watcher")
    return rounds


def measure_dirty_rates() -> str:
    return ", ".join(f"{k} {v}" for k, v in dirty_rates.measure_round().items())
