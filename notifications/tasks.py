"""django-q2 entry points: one call into notifications.services each."""

from notifications import services


def deliver(delivery_id: int) -> str:
    delivery = services.attempt_delivery(delivery_id)
    return f"delivery {delivery_id}: {delivery.status if delivery else 'not due'}"


def deliver_due() -> str:
    """The retry schedule ("notifications-retry", every minute): enqueue every attempt that is due."""
    return f"{len(services.enqueue_due())} enqueued"
