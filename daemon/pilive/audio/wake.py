"""The wake word's ear: pymicro-wakeword (microWakeWord's TensorFlow Lite models, inside its
wheel) on a thread of its own, fed the microphone's processed 16 kHz chunks.

Threads: `submit` (on the loop, for every chunk the microphone delivers while not muted) only
queues the chunk. The listener's thread cuts it into the 10 ms frames the model takes, computes
the features, runs the model (TensorFlow Lite in C, about 40 µs a frame on x86-64) and the pure
rules of `wake_word.WakeTurns`, and hands their events to the loop with `call_soon_threadsafe`.
The loop never runs the model. Nothing here sends anything: the word starts a turn as a press
does, through the household.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pilive.audio.worker import ChunkWorker
from pilive.wake_word import FRAME_BYTES, WakeEvent, WakeTurns

if TYPE_CHECKING:
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

log = logging.getLogger(__name__)


class WakeModel:
    """One model and its feature front end: 10 ms frames in, a decision every `stride` frames."""

    def __init__(self, name: str) -> None:
        from pymicro_wakeword import (  # noqa: PLC0415 - only for a configured wake word
            MicroWakeWord,
            MicroWakeWordFeatures,
            Model,
        )

        self.name = name
        self._new_features: Callable[[], MicroWakeWordFeatures] = MicroWakeWordFeatures
        self._model: MicroWakeWord = MicroWakeWord.from_builtin(Model(name))
        self._features = self._new_features()
        self.cutoff = float(self._model.probability_cutoff)
        self.stride = max(1, int(self._model.stride))
        self._fed = 0

    def decide(self, frame: bytes) -> bool | None:
        """The model's decision after this 10 ms frame, or None when it made none."""
        decision: bool | None = None
        for features in self._features.process_streaming(frame):
            probability = self._model.process_streaming_prob(features)
            self._fed += 1
            if self._fed % self.stride == 0 and probability is not None:
                decision = probability > self.cutoff
        return decision

    def reset(self) -> None:
        """Forget what was heard (the model keeps state across frames)."""
        self._model.reset()
        self._features = self._new_features()
        self._fed = 0

    def close(self) -> None:
        self._model.close()


class WakeWordListener:
    """Runs `model` and `turns` on the listener's thread; `on_event` gets their events on the
    loop, with the stream position they refer to."""

    def __init__(
        self,
        model: WakeModel,
        turns: WakeTurns,
        on_event: Callable[[WakeEvent], None],
        *,
        max_queue_chunks: int = 100,
    ) -> None:
        self.model = model
        self.turns = turns
        self._on_event = on_event
        self._worker: ChunkWorker[tuple[int, int, bytes]] = ChunkWorker(
            "wake-word",
            self._take,
            max_items=max_queue_chunks,
            behind="the wake word listener is behind: %d chunks dropped",
        )
        self._closed = False
        self._generation = 0  # bumped by `reset`: older chunks are dropped
        self._rearm = False  # set on the loop, taken by the thread
        self._word_on_loop = False  # the loop was handed a word whose turn is not over yet
        self.fed_bytes = 0
        """Bytes submitted (on the loop): the same stream the capture's pre-roll holds."""
        self.frames = 0
        self.cpu_s = 0.0
        self.failure: str | None = None
        """Why the listener stopped (its library failed); the button still works."""
        # The listener thread's own: the stream it has heard, and the generation it belongs to.
        self._pending = bytearray()
        self._heard_generation = 0

    @property
    def waiting(self) -> bool:
        """A word reached the loop and the listener waits to be re-armed. Only a word the loop
        was handed: one the thread heard that is still on its way must not be re-armed by a
        chunk the loop handles before it (that would also drop its question's end)."""
        return self._word_on_loop

    @property
    def dropped_chunks(self) -> int:
        return self._worker.dropped

    async def start(self) -> None:
        self._worker.start()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if await self._worker.aclose():
            self.model.close()  # never under a thread still inside it

    def submit(self, chunk: bytes) -> None:
        """A processed microphone chunk (on the loop): queued, never run here."""
        if self._closed or self.failure is not None:
            return
        self.fed_bytes += len(chunk)
        self._worker.submit((self._generation, self.fed_bytes, chunk))

    def rearm(self) -> None:
        """The turn the word started is over: listen for the next (on the loop)."""
        if self._word_on_loop:
            self._word_on_loop = False
            self._rearm = True

    def reset(self) -> None:
        """The privacy mute: what was queued or heard so far is forgotten, and the stream
        position starts again (the pre-roll was emptied too)."""
        self._generation += 1
        self._word_on_loop = False  # the thread forgets, and re-arms, at the next chunk

    @property
    def cpu_us_per_frame(self) -> float:
        return self.cpu_s / self.frames * 1e6 if self.frames else 0.0

    # --- the listener's thread -----------------------------------------------------------------

    def _take(self, item: tuple[int, int, bytes]) -> bool:
        """One queued chunk; False ends the thread."""
        chunk_generation, fed_bytes, chunk = item
        if chunk_generation != self._generation:
            return True
        pending = self._pending
        try:  # a library fault ends the wake word, not the daemon (also in a reset)
            if chunk_generation != self._heard_generation:
                self._heard_generation = chunk_generation
                pending.clear()
                self.model.reset()  # pymicro-wakeword reloads the model here
                self.turns.forget()
            events = self._hear(pending, chunk)
        except Exception as exc:
            self.failure = f"the {self.model.name} model failed: {exc!r}"
            log.error("wake word off: %s; the button still starts turns", self.failure)
            return False
        # From the thread's stream to the loop's (fed_bytes): they differ by what was dropped.
        shift = fed_bytes - (self.turns.position_bytes + len(pending))
        for event in events:
            moved = WakeEvent(event.kind, event.offset_bytes + shift)
            if not self._worker.to_loop(self._deliver, chunk_generation, moved):
                return False
        return True

    def _hear(self, pending: bytearray, chunk: bytes) -> list[WakeEvent]:
        """The model and the rules over the whole 10 ms frames `pending` now holds."""
        if self._rearm:
            self._rearm = False
            self.turns.rearm()
        pending += chunk
        started = time.thread_time()
        events: list[WakeEvent] = []
        while len(pending) >= FRAME_BYTES:
            frame = bytes(pending[:FRAME_BYTES])
            del pending[:FRAME_BYTES]
            events += self.turns.frame(frame, self.model.decide(frame))
            self.frames += 1
        self.cpu_s += time.thread_time() - started
        return events

    def _deliver(self, generation: int, event: WakeEvent) -> None:
        if not self._closed and generation == self._generation:
            if event.kind == "word":
                self._word_on_loop = True
            self._on_event(event)
