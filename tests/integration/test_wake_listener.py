"""The wake word's listener thread with the real model: what it hands to the loop, in the loop's
stream positions, and what a fault in the model's library does."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from pilive.follow_up import SENSITIVITY_OFFSET_DB, THRESHOLD_DBFS
from pilive.wake_word import BYTES_PER_S, WakeEvent, WakeTurns
from tests.support.room_rig import RATE_HZ, speak, to_int16

pytest.importorskip("pymicro_wakeword", reason="pymicro-wakeword has wheels for x86-64/aarch64")

from pilive.audio.wake import WakeModel, WakeWordListener
from pilive.audio.worker import STOP_WAIT_S

CHUNK_BYTES = 640  # 20 ms, as the capture delivers


def chunks_of(samples: np.ndarray) -> list[bytes]:
    data = to_int16(samples).tobytes()
    return [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]


async def wait_for(predicate: object, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_the_word_reaches_the_loop_once_dated_in_the_loops_stream() -> None:
    """2 s of quiet, "Okay, Nabu", 2 s of quiet, submitted as the capture delivers them: one
    word event arrives on the loop, its start within 40 ms of the word's first loud frame in
    the stream the loop fed (listener.fed_bytes counts it); the model ran off the loop."""
    word = speak("Okay, Nabu.")
    lead = 2 * RATE_HZ
    # Its first 20 ms frame the energy detector takes for speech (start_sensitivity "high").
    frames = word[: len(word) // 320 * 320].reshape(-1, 320)
    threshold = 10 ** ((THRESHOLD_DBFS + SENSITIVITY_OFFSET_DB["high"]) / 20)
    onset = int(np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > threshold)[0]) * 320
    stream = np.concatenate([np.zeros(lead), word, np.zeros(2 * RATE_HZ)])
    events: list[WakeEvent] = []
    listener = WakeWordListener(WakeModel("okay_nabu"), WakeTurns(local_end=False), events.append)
    await listener.start()
    try:
        for chunk in chunks_of(stream):
            listener.submit(chunk)
            await asyncio.sleep(0.02)  # as a capture delivers them: a loaded machine keeps up
        await wait_for(lambda: listener.frames >= len(stream) // 160 - 1 or listener.dropped_chunks)
        assert listener.dropped_chunks == 0
        await asyncio.sleep(0.1)  # the last call_soon_threadsafe
    finally:
        await listener.aclose()
    assert [e.kind for e in events] == ["word"]
    expected = (lead + onset) * 2
    assert abs(events[0].offset_bytes - expected) <= 0.04 * BYTES_PER_S
    assert listener.fed_bytes == len(stream) * 2
    assert listener.cpu_us_per_frame > 0


class FailingModel(WakeModel):
    """The real model whose library call fails after a second of audio (fault injection)."""

    def decide(self, frame: bytes) -> bool | None:
        if self._fed > 100:
            raise OSError("tflite: invoke failed")
        return super().decide(frame)


async def test_a_fault_in_the_model_ends_the_wake_word_not_the_daemon(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The library fails mid-stream: the listener says why (logged, and `failure` for STATUS),
    takes no more audio, and raises nothing into the loop."""
    listener = WakeWordListener(
        FailingModel("okay_nabu"), WakeTurns(local_end=False), lambda event: None
    )
    await listener.start()
    try:
        for chunk in chunks_of(np.zeros(3 * RATE_HZ)):
            listener.submit(chunk)
            await asyncio.sleep(0.005)
        await wait_for(lambda: listener.failure is not None)
        fed = listener.fed_bytes
        listener.submit(bytes(CHUNK_BYTES))
        assert listener.fed_bytes == fed
    finally:
        await listener.aclose()
    assert "tflite: invoke failed" in (listener.failure or "")
    assert "wake word off" in caplog.text


async def test_a_chunk_heard_before_the_word_reaches_the_loop_does_not_re_arm_it() -> None:
    """The household re-arms the listener on a chunk when it waits and no turn is pending. A
    chunk the loop handles after the thread heard the word but before the word reached the loop
    sees no turn yet: that must not re-arm the listener, which would also drop the question's
    end (push-to-talk), leaving the turn open until max_press_s. Here the loop is held while
    the thread decides, then does what Household.hear does; the question's end still comes."""
    word, question = speak("Okay, Nabu."), speak("What is the weather like in Paris today?")
    head = np.concatenate([np.zeros(RATE_HZ // 5), word, np.zeros(RATE_HZ * 2 // 5)])
    tail = np.concatenate([np.zeros(RATE_HZ // 2), question, np.zeros(2 * RATE_HZ)])
    events: list[WakeEvent] = []
    listener = WakeWordListener(WakeModel("okay_nabu"), WakeTurns(local_end=True), events.append)
    await listener.start()
    try:
        for chunk in chunks_of(head):  # no await: the loop delivers nothing meanwhile
            listener.submit(chunk)
        deadline_s = time.monotonic() + 20.0
        while listener.turns.armed and time.monotonic() < deadline_s:
            time.sleep(0.01)  # noqa: ASYNC251 - the loop held on purpose: decided, not delivered
        assert not listener.turns.armed and not events
        if listener.waiting:  # Household.hear: no turn is pending yet (the word is not here)
            listener.rearm()
        for chunk in chunks_of(tail):
            listener.submit(chunk)
            await asyncio.sleep(0.02)  # the capture's pace: faster, a loaded machine drops
        await wait_for(lambda: len(events) >= 2, 20.0)
    finally:
        await listener.aclose()
    assert [e.kind for e in events] == ["word", "end"]


class FailingReset(WakeModel):
    """The real model whose reload at a reset fails (pymicro-wakeword's reset reloads the model
    through the C library, whose checked calls raise RuntimeError): fault injection."""

    def reset(self) -> None:
        raise RuntimeError("TfLiteInterpreterGetInputTensor returned NULL")


async def test_a_fault_when_the_mute_resets_the_model_is_said_too() -> None:
    """The privacy mute resets the model on the listener's thread (at the next chunk); a fault
    there ends the wake word as a fault in a decision does: `failure` says why (STATUS), no
    more audio is taken, and the thread is not left dead with the queue filling up."""
    listener = WakeWordListener(
        FailingReset("okay_nabu"), WakeTurns(local_end=False), lambda event: None
    )
    await listener.start()
    try:
        for chunk in chunks_of(np.zeros(RATE_HZ // 2)):
            listener.submit(chunk)
            await asyncio.sleep(0.005)
        listener.reset()  # the mute
        listener.submit(bytes(CHUNK_BYTES))
        await wait_for(lambda: listener.failure is not None, 10.0)
    finally:
        await listener.aclose()
    assert "returned NULL" in (listener.failure or "")


class HungModel(WakeModel):
    """The real model whose library call hangs until released (fault injection); records
    whether it was closed while a call was still inside it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.inside = threading.Event()
        self.release = threading.Event()
        self.closed_while_inside = False
        self.closed = False

    def decide(self, frame: bytes) -> bool | None:
        self.inside.set()
        self.release.wait(30)
        self.inside.clear()
        return super().decide(frame)

    def close(self) -> None:
        self.closed = True
        self.closed_while_inside = self.inside.is_set()
        super().close()


async def test_a_hung_model_does_not_hold_the_stop_and_is_not_freed_under_its_thread() -> None:
    """A library call that never returns: the stop returns after the worker's bounded wait,
    and the model (a C library's memory) is not closed while the thread is still inside it."""
    model = HungModel("okay_nabu")
    listener = WakeWordListener(model, WakeTurns(local_end=False), lambda event: None)
    await listener.start()
    try:
        listener.submit(bytes(CHUNK_BYTES))
        await wait_for(model.inside.is_set, 10.0)
        async with asyncio.timeout(STOP_WAIT_S + 5):
            await listener.aclose()
        assert not model.closed and not model.closed_while_inside
    finally:
        model.release.set()
