"""django-q2 tasks: thin wrappers, one call each. Never retried (Q_CLUSTER max_attempts=1).

(docs/architecture.md, "Thin interfaces" and "Jobs run once".)
"""

from __future__ import annotations


def run_migration(job_id: int) -> str:
    """Claim (PENDING -> RUNNING, a duplicate is a no-op) and run one guest migration."""
    from migrations_app.orchestrator.run import run_migration as run

    return run(job_id)


def reconcile() -> list[str] | None:
    """Settle jobs left active without a live task (scheduled every minute and at worker start; cluster-wide
    once under its lease: None when another worker's pass holds it)."""
    from migrations_app.orchestrator.reconciler import reconcile as run

    return run()


def balance() -> str:
    """One balancer round (scheduled every minute; cluster-wide once under its lease)."""
    from migrations_app.services.balancer import balancer_round

    rnd = balancer_round()
    return "another worker holds the round" if rnd is None else str(rnd)


def recover_host(hypervisor_id: int) -> dict[str, str]:
    """Restart a failed host's "restart on failure" guests on healthy hosts (docs/ha.md, section 4)."""
    from migrations_app.services.recovery import recover_host as run

    return run(hypervisor_id)
