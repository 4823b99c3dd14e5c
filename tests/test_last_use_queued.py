"""Uses queued in a process (``batched``): applied at once without Redis, never sent twice."""

import logging
import os
import threading

import pytest
from django.core.cache import cache

from credentials import batched, counters

pytestmark = pytest.mark.django_db


def test_without_redis_a_queued_change_is_applied_at_once():
    batched.add_later(counters.Changes({"uses": 2}, {"at": 7}))
    assert (cache.get("uses"), cache.get("at")) == (2, 7)


def test_queued_changes_are_summed_and_sent_once(redis_cache):
    for at in (5, 9):
        batched.add_later(counters.Changes({"uses": 1}, {"at": at}))
    assert cache.get("uses") is None  # not sent yet
    batched.send_now()
    batched.send_now()
    assert (cache.get("uses"), cache.get("at")) == (2, 9)


def test_a_forked_child_does_not_send_what_its_parent_queued(redis_cache):
    batched.add_later(counters.Changes({"uses": 1}, {}))
    child = os.fork()
    if child == 0:  # the child: its queue must start empty
        os._exit(0 if not batched._queued else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    batched.send_now()
    assert cache.get("uses") == 1


def test_a_forked_child_starts_a_sender_of_its_own(redis_cache):
    batched.add_later(counters.Changes({"uses": 1}, {}))  # the parent's sender is running
    assert batched._sender_running
    child = os.fork()
    if child == 0:  # the child: the parent's thread did not come along, so it starts one
        try:
            none_yet = not batched._sender_running
            batched.add_later(counters.Changes({"uses": 1}, {}))
            started = any(t.name == "keyturn-counters" for t in threading.enumerate())
            os._exit(0 if none_yet and started else 1)
        finally:
            os._exit(2)  # never back into pytest from the child
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_failed_send_is_logged_by_its_size_and_lost(redis_cache, monkeypatch, caplog):
    batched.add_later(counters.Changes({"keyturn:use:v1:12:count": 1}, {"k": 3}))

    def refuse(*args, **kwargs):
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(counters, "send", refuse)
    with caplog.at_level(logging.ERROR):
        batched.send_now()
    assert "Could not send 2 queued counter changes" in caplog.text
    monkeypatch.undo()
    batched.send_now()
    assert cache.get("keyturn:use:v1:12:count") is None
