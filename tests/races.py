"""Shared by the tests that race threads against one database: start them together, collect
what each returns, and fail on a hang or on any exception the work did not expect."""

import threading

from django.db import connection


def together(work, threads: int, *, timeout: float = 120) -> list:
    """Run ``work(index)`` in ``threads`` threads released at once; return their results.

    Each thread closes its own database connection when done. An exception escaping ``work``
    is a bug in what is tested: collected, and asserted on once every thread has finished.
    """
    barrier = threading.Barrier(threads)
    results, unexpected = [], []

    def run(index):
        try:
            barrier.wait()
            results.append(work(index))
        except Exception as error:
            unexpected.append(repr(error))
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    assert not any(worker.is_alive() for worker in workers), "a thread hung (deadlock?)"
    assert unexpected == [], unexpected
    return results
