"""The microphone DSP's worker thread (audio/worker.py), as the echo path and the wake word
listener use it: the loop only queues, a full queue drops and counts, results come back on the
loop, and a stop waits out a busy thread without blocking the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pilive.audio.worker import ChunkWorker


async def test_items_are_handled_in_order_on_the_thread_and_results_come_back_on_the_loop() -> None:
    """Every item submitted reaches `handle` once, in order, on the worker's thread; what the
    thread hands back with to_loop runs on the loop's thread."""
    handled: list[tuple[int, str]] = []
    back: list[tuple[int, str]] = []

    def handle(item: int) -> bool:
        handled.append((item, threading.current_thread().name))
        worker.to_loop(lambda: back.append((item, threading.current_thread().name)))
        return True

    worker: ChunkWorker[int] = ChunkWorker("test-worker", handle, max_items=200, behind="%d")
    worker.start()
    for i in range(100):
        worker.submit(i)
    async with asyncio.timeout(10):
        while len(back) < 100:
            await asyncio.sleep(0.01)
    await worker.aclose()
    assert [i for i, _ in handled] == list(range(100))
    assert {name for _, name in handled} == {"test-worker"}
    assert [i for i, _ in back] == list(range(100))
    assert {name for _, name in back} == {threading.current_thread().name}
    assert worker.dropped == 0


async def test_a_full_queue_drops_and_counts_without_the_loop_waiting() -> None:
    """While the thread is stuck in one item, submits beyond the queue's size return at once
    and are counted; after the stop, what was queued before the drops was still handled."""
    gate = threading.Event()
    handled: list[int] = []

    def handle(item: int) -> bool:
        gate.wait(10)
        handled.append(item)
        return True

    worker: ChunkWorker[int] = ChunkWorker("stuck", handle, max_items=4, behind="behind: %d")
    worker.start()
    worker.submit(0)
    async with asyncio.timeout(10):  # the thread has taken item 0 and waits on the gate
        while worker._queue.qsize():
            await asyncio.sleep(0.01)
    for i in range(1, 11):
        worker.submit(i)  # 4 fit, 6 do not
    assert worker.dropped == 6
    closing = asyncio.create_task(worker.aclose())
    await asyncio.sleep(0.2)
    assert not closing.done()  # the stop waits for the busy thread, off the loop
    gate.set()
    async with asyncio.timeout(10):
        await closing
    assert handled == [0, 1, 2, 3, 4]


async def test_handle_returning_false_ends_the_thread_and_a_stop_after_it_returns() -> None:
    """A handler that gives up (its library failed) ends the thread; later submits are only
    queued, and the stop does not hang on the dead thread."""
    handled: list[int] = []

    def handle(item: int) -> bool:
        handled.append(item)
        return item < 2

    worker: ChunkWorker[int] = ChunkWorker("gives-up", handle, max_items=8, behind="%d")
    worker.start()
    thread = worker._thread
    assert thread is not None
    for i in range(5):
        worker.submit(i)
    async with asyncio.timeout(10):
        while thread.is_alive():
            await asyncio.sleep(0.01)
    assert handled == [0, 1, 2]
    async with asyncio.timeout(5):
        await worker.aclose()
    await worker.aclose()  # twice is harmless


def test_to_loop_is_false_once_the_loop_is_closed() -> None:
    """A thread that outlives its loop (the daemon stopping) is told to end, not crashed."""
    loop = asyncio.new_event_loop()
    worker: ChunkWorker[int] = ChunkWorker("late", lambda i: True, max_items=1, behind="%d")
    worker._loop = loop
    assert worker.to_loop(lambda: None)
    loop.close()
    assert not worker.to_loop(lambda: None)
    assert not ChunkWorker("unstarted", lambda i: True, max_items=1, behind="%d").to_loop(print)


async def test_a_hung_handler_is_left_behind_after_the_wait_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A library call that never returns (a hung TFLite call) holds the stop for `wait_s` only:
    aclose reports False, so its owner does not free what the thread is still inside, and the
    log names the thread left behind."""
    gate = threading.Event()
    worker: ChunkWorker[int] = ChunkWorker(
        "hung", lambda i: gate.wait(30), max_items=2, behind="%d"
    )
    worker.start()
    worker.submit(0)
    await asyncio.sleep(0.05)
    async with asyncio.timeout(10):
        ended = await worker.aclose(wait_s=0.3)
    assert ended is False
    assert "hung: its thread did not stop" in caplog.text and "left behind" in caplog.text
    gate.set()
