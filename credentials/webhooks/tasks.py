"""The background task a ``manage.py db_worker`` runs. Its only argument is a delivery id."""

from django_tasks import task


@task()
def deliver(delivery_id: int) -> str:
    """Make one attempt at a delivery, if it is still due (duplicates are harmless)."""
    from .delivery import deliver_now

    return deliver_now(delivery_id)
