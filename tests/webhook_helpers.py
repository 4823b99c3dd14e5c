"""Run the real django-tasks-db worker loop in the test process until the queue is drained."""

import time

from django_tasks_db.management.commands.db_worker import Worker

from credentials.models import Delivery


def drain(*, rounds: int = 50, pause: float = 0.05) -> None:
    """Run every ready task (as ``manage.py db_worker --batch`` would), again and again, until
    no delivery is pending or in flight, or ``rounds`` passes went by."""
    worker = Worker(
        queue_names=["default"], interval=0, batch=True, backend_name="default",
        startup_delay=False, max_tasks=None, worker_id="tests", excluded_queue_names=[],
    )  # fmt: skip
    for _ in range(rounds):
        worker.running = True
        worker.run()
        busy = Delivery.objects.filter(
            status__in=(Delivery.Status.PENDING, Delivery.Status.IN_FLIGHT), retry=True
        )
        if not busy.exists():
            return
        time.sleep(pause)
