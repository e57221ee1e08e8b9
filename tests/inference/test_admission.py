import threading

import pytest

from inference.engine.admission import AdmissionController
from inference.engine.types import Overloaded


def test_full_queue_is_refused_with_a_retry_estimate():
    controller = AdmissionController(max_concurrent=1, max_queue=0)
    with controller.acquire():
        assert controller.stats().running == 1
        with pytest.raises(Overloaded) as refused:
            controller.acquire()
        assert refused.value.retry_after_s >= 1
    assert controller.stats().running == 0
    with controller.acquire():  # the slot is free again
        pass


def test_waiters_are_served_in_arrival_order():
    controller = AdmissionController(max_concurrent=1, max_queue=3)
    first = controller.acquire()
    order, threads = [], []
    for name in ("a", "b", "c"):
        queued = threading.Event()

        def wait(name=name, queued=queued):
            queued.set()
            with controller.acquire(timeout_s=10):
                order.append(name)

        thread = threading.Thread(target=wait)
        thread.start()
        queued.wait()
        # Let each waiter reach the queue before the next one starts.
        while controller.waiting < len(threads) + 1:
            threading.Event().wait(0.005)
        threads.append(thread)
    assert controller.stats().waiting == 3
    with pytest.raises(Overloaded):
        controller.acquire()
    first.release()
    for thread in threads:
        thread.join(10)
    assert order == ["a", "b", "c"]
    assert controller.stats().running == 0 and controller.stats().waiting == 0


def test_waiting_too_long_is_an_overload():
    controller = AdmissionController(max_concurrent=1, max_queue=1)
    with controller.acquire():
        with pytest.raises(Overloaded, match="Timed out"):
            controller.acquire(timeout_s=0.05)
        assert controller.waiting == 0


def test_slot_is_released_when_the_work_fails():
    controller = AdmissionController(max_concurrent=1, max_queue=0)
    with pytest.raises(RuntimeError), controller.acquire():
        raise RuntimeError("generation failed")
    assert controller.running == 0


def test_closing_a_stream_releases_its_slot():
    controller = AdmissionController(max_concurrent=1, max_queue=0)

    def tokens():
        yield from ("a", "b", "c")

    stream = controller.stream(tokens)
    assert controller.running == 0  # nothing is taken before the first item is asked for
    assert next(stream) == "a"
    assert controller.running == 1
    stream.close()  # the client went away
    assert controller.running == 0
    assert list(controller.stream(tokens)) == ["a", "b", "c"]
    assert controller.running == 0


def test_releasing_twice_frees_one_slot():
    controller = AdmissionController(max_concurrent=2, max_queue=0)
    slot = controller.acquire()
    controller.acquire()
    slot.release()
    slot.release()
    assert controller.running == 1
