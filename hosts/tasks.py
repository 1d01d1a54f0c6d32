"""django-q2 entry points for inventory. Thin: one call into hosts.services each."""

from hosts.services import inventory, watcher

# The watcher stops itself before django-q2's task timeout (settings.Q_CLUSTER["timeout"]).
WATCHER_RUN_SECONDS = 50 * 60


def refresh_inventory(hypervisor_ids: list[int] | None = None) -> list[str]:
    return [f"{r.hypervisor}: {'online' if r.online else r.error}" for r in inventory.refresh_all(hypervisor_ids)]


def watch_inventory() -> int:
    return watcher.run_watcher(duration_s=WATCHER_RUN_SECONDS)
