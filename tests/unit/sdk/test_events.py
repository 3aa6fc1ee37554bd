"""The event senders: in-memory, and HTTP to an intake with batching, retries and bounds."""

from __future__ import annotations

import time

from splitlab.sdk import HttpEventSender, MemoryEventSender, SenderOptions

from .sdk_helpers import IntakeStub

FAST = SenderOptions(backoff=0.01, timeout=2.0)


def test_memory_sender_keeps_copies_in_order() -> None:
    sender = MemoryEventSender()
    event = {"action": "a"}
    sender.send(event)
    sender.send({"action": "b"})
    event["action"] = "changed"
    assert [e["action"] for e in sender.events] == ["a", "b"]
    assert sender.flush() is True


def test_http_sender_posts_json_arrays_in_batches(intake: IntakeStub) -> None:
    sender = HttpEventSender(intake.url, SenderOptions(batch_size=3, backoff=0.01))
    for i in range(7):
        sender.send({"action": "click", "n": i})
    assert sender.flush(5.0) is True
    assert [e["n"] for e in intake.events] == list(range(7))
    assert all(1 <= len(batch) <= 3 for batch in intake.batches)
    assert sender.metrics.value("splitlab_sdk_events_sent_total") == 7
    sender.close()


def test_http_sender_retries_an_unavailable_intake(intake: IntakeStub) -> None:
    intake.statuses = [503, 500]
    sender = HttpEventSender(intake.url, FAST)
    sender.send({"action": "a"})
    assert sender.flush(5.0) is True
    assert [e["action"] for e in intake.events] == ["a"]
    assert sender.metrics.value("splitlab_sdk_send_retries_total") == 2
    sender.close()


def test_http_sender_drops_what_the_intake_refuses(intake: IntakeStub) -> None:
    intake.statuses = [400]
    sender = HttpEventSender(intake.url, FAST)
    sender.send({"action": "bad"})
    sender.send({"action": "good"})
    assert sender.flush(5.0) is True
    dropped = sender.metrics.value("splitlab_sdk_events_dropped_total", {"reason": "refused"})
    assert dropped + len(intake.events) == 2
    assert dropped >= 1
    sender.close()


def test_http_sender_gives_up_after_retries_without_raising() -> None:
    sender = HttpEventSender("http://127.0.0.1:9/v1/events",
                             SenderOptions(retries=2, backoff=0.01, timeout=0.5))
    sender.send({"action": "lost"})
    assert sender.flush(10.0) is True
    assert sender.metrics.value("splitlab_sdk_events_dropped_total",
                                {"reason": "intake_unavailable"}) == 1
    assert sender.metrics.value("splitlab_sdk_send_retries_total") == 2
    sender.close()


def test_a_full_queue_drops_new_events_without_blocking() -> None:
    options = SenderOptions(queue_size=2, batch_size=1, retries=1, backoff=5.0, timeout=0.5)
    sender = HttpEventSender("http://127.0.0.1:9/v1/events", options)
    started = time.monotonic()
    for i in range(10):
        sender.send({"n": i})
    assert time.monotonic() - started < 0.5
    dropped = sender.metrics.value("splitlab_sdk_events_dropped_total", {"reason": "queue_full"})
    assert 7 <= dropped <= 8  # 2 queued, at most 1 taken by the worker already
    sender.close(0.1)


def test_unserializable_events_are_dropped_not_raised(intake: IntakeStub) -> None:
    sender = HttpEventSender(intake.url, FAST, metrics=None)
    sender.send({"action": "before"})
    sender.send({"action": object()})
    sender.send({"action": "after"})
    assert sender.flush(5.0) is True
    assert sender.metrics.value("splitlab_sdk_events_dropped_total",
                                {"reason": "unserializable"}) == 1
    assert sorted(e["action"] for e in intake.events) == ["after", "before"]
    sender.close()


def test_closed_sender_drops_later_events(intake: IntakeStub) -> None:
    sender = HttpEventSender(intake.url, FAST)
    sender.send({"action": "before"})
    sender.close(5.0)
    sender.send({"action": "after"})
    assert [e["action"] for e in intake.events] == ["before"]
    assert sender.metrics.value("splitlab_sdk_events_dropped_total", {"reason": "closed"}) == 1


def test_sender_refuses_a_non_http_url() -> None:
    import pytest

    with pytest.raises(TypeError):
        HttpEventSender("ftp://example.org/")
