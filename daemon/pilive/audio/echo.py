"""The microphone's echo path: what keeps the speaker's own voice out of what the server hears.

Hands-free streams the microphone while the answer plays; on a real speaker the microphone hears
the answer, the server's voice detection takes it for the user, and the model interrupts itself.
Three ways out, chosen by `[audio.echo] mode` and said in `pilive check` and in STATUS:

- "cancel": an echo canceller (see `cancellers`) subtracts the speaker's sound, fed with exactly
  what the device played (the ring buffer's tap), so the user can talk over the answer. During
  the canceller's first second of speaker sound, while it is still adapting, the frames that may
  hear the speaker are muted as in half-duplex (WARM_UP_FRAMES).
- "half-duplex": the microphone hears silence while the speaker plays and for `tail_ms` after
  (the room's echo dies away); the fallback when no canceller can load. The user cannot
  interrupt by voice then, only with the button.
- "off": nothing (push-to-talk, where a press silences the speaker, or headphones).

Threads: capture delivers 16 kHz chunks on the event loop; `EchoProcessor.submit` only queues
them. Its own thread cuts them into 10 ms frames, takes the matching reference frame, runs the
canceller (which releases the GIL) or the gate, and hands whole chunks back to the loop with
`call_soon_threadsafe`. The PortAudio callbacks stay copies; the loop never runs the DSP.

Alignment: the tap stamps each block the speaker played with its DAC time, capture knows each
block's ADC time. A microphone frame captured at time t heard what the speaker played at t minus
the (unknown) room and device delay; the reference is taken from t minus `lead_ms`, a little
earlier than any echo can arrive, and the canceller finds the rest of the delay itself. The
offset between the two sample counters is locked once and then only moved when the measured one
drifts more than `resync_ms` (a device reopened, an underrun): canceller filters are
sample-exact, and timestamps jitter.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pilive.audio.backends import SAMPLE_BYTES
from pilive.audio.cancellers import FRAME_SAMPLES, RATE_HZ, Frame
from pilive.audio.echo_mode import EchoPlan, fallback_reason
from pilive.audio.resample import PcmConverter
from pilive.audio.worker import ChunkWorker

if TYPE_CHECKING:
    from pilive.audio._ringbuf import RingBuffer
    from pilive.audio.playback import Playback

log = logging.getLogger(__name__)

# A canceller adapts to the room over its first second of speaker sound (WebRTC's AEC3 leaves a
# residual near -49 dBFS in it on the simulated room, about what a server's voice detection
# starts on): the frames that may hear the speaker then are muted as in half-duplex, while the
# canceller still processes them and learns.
WARM_UP_FRAMES = 100
# A reference sample this loud or louder means the speaker is playing (-60 dBFS peak; what the
# ring plays between answers is exact zeros).
_LOUD_SAMPLE = 33
_FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES


class PlaybackReference:
    """What the speaker played, at 16 kHz mono, indexed so a microphone frame finds its match.

    Runs on the echo thread only. It follows the playback's ring (a reopened device with another
    format brings a new ring: the alignment starts again) and keeps `history_ms` of reference.
    """

    def __init__(
        self,
        playback: Playback,
        *,
        lead_ms: float = 20.0,
        resync_ms: float = 10.0,
        history_ms: int = 2000,
    ) -> None:
        self._playback = playback
        self._lead = round(RATE_HZ * lead_ms / 1000)
        self._resync = round(RATE_HZ * resync_ms / 1000)
        self._history_samples = RATE_HZ * history_ms // 1000
        self._ring: RingBuffer | None = None
        self._rate_hz = RATE_HZ
        self._frame_bytes = SAMPLE_BYTES
        self._converter: PcmConverter | None = None
        self._tap_pos = 0
        self._buffer = bytearray(0)
        # The reference kept: _store[:_stored] holds indices _hist_start on. Appends go in place;
        # the newest history_ms move to the front only when the store is full (no per-frame copy
        # of the whole history).
        self._store = np.zeros(2 * self._history_samples, dtype=np.int16)
        self._stored = 0
        self._hist_start = 0  # 16 kHz index of _store[0] (index 0 = the tap's first byte)
        self._t0_s: deque[float] = deque(maxlen=25)  # DAC time of index 0, per stamp
        self._last_stamp_pos = -1
        self._offsets: deque[int] = deque(maxlen=25)
        self._offset: int | None = None
        self.loud_until = -(10**12)  # the newest index where the speaker played something
        self.resyncs = 0

    def _restart(self, ring: RingBuffer | None) -> None:
        self._ring = ring
        self._offset = None
        self._offsets.clear()
        self._t0_s.clear()
        self._last_stamp_pos = -1
        self.loud_until = -(10**12)
        fmt = self._playback.device_format
        if ring is None or fmt is None or ring.tap_capacity == 0:
            self._ring = None
            return
        self._rate_hz, channels = fmt
        self._frame_bytes = channels * SAMPLE_BYTES
        self._converter = None
        if fmt != (RATE_HZ, 1):
            self._converter = PcmConverter(self._rate_hz, channels, RATE_HZ, 1)
        self._buffer = bytearray(min(ring.tap_capacity, 1 << 16))
        # From as far back as the history keeps (and the tap surely still holds) on.
        history_frames = self._history_samples * self._rate_hz // RATE_HZ
        keep_bytes = min(ring.tap_capacity // 2, history_frames * self._frame_bytes)
        pos = max(0, ring.tap_position - keep_bytes)
        self._tap_pos = pos - pos % self._frame_bytes
        self._stored = 0
        self._hist_start = self._index_of(self._tap_pos)

    def _index_of(self, tap_pos: int) -> int:
        return round(tap_pos // self._frame_bytes * RATE_HZ / self._rate_hz)

    def _pull(self) -> None:
        """Brings in what the device played since the last call, and the newest stamp."""
        ring = self._playback.ring
        if ring is not self._ring:
            self._restart(ring)
        if self._ring is None:
            return
        ring = self._ring
        end = ring.tap_position
        if end - self._tap_pos > ring.tap_capacity // 2:
            self._restart(ring)  # this thread fell far behind: start again from now
            return
        chunks = []
        while self._tap_pos < end:
            view = memoryview(self._buffer)[: min(len(self._buffer), end - self._tap_pos)]
            try:
                got = ring.tap_read(view, self._tap_pos)
            except LookupError:
                self._restart(ring)
                return
            if got <= 0:
                break
            self._tap_pos += got
            data = bytes(view[:got])
            pcm = self._converter.convert(data) if self._converter is not None else data
            chunks.append(np.frombuffer(pcm, dtype="<i2"))
        if chunks:
            new = np.concatenate(chunks)
            loud = np.flatnonzero(np.abs(new.astype(np.int32)) >= _LOUD_SAMPLE)
            if len(loud):
                self.loud_until = self._hist_start + self._stored + int(loud[-1])
            self._append(new)
        stamp = ring.tap_stamp()
        if stamp is not None and stamp[0] != self._last_stamp_pos:
            pos, dac_s = stamp
            self._last_stamp_pos = pos
            self._t0_s.append(dac_s - pos // self._frame_bytes / self._rate_hz)

    def _append(self, new: Frame) -> None:
        """Adds the newest reference; what is older than history_ms may go."""
        if len(new) > self._history_samples:  # more than the history at once: keep its end
            self._hist_start += self._stored + len(new) - self._history_samples
            self._stored = 0
            new = new[-self._history_samples :]
        if self._stored + len(new) > len(self._store):
            keep = self._history_samples - len(new)
            self._store[:keep] = self._store[self._stored - keep : self._stored]
            self._hist_start += self._stored - keep
            self._stored = keep
        self._store[self._stored : self._stored + len(new)] = new
        self._stored += len(new)

    def index_for(self, adc_time_s: float, mic_index: int) -> int | None:
        """The reference index matching microphone sample `mic_index` captured at `adc_time_s`
        (None until the speaker has played and stamped a block)."""
        self._pull()
        if self._ring is None or not self._t0_s:
            return None
        t0_s = statistics.median(self._t0_s)
        measured = round((adc_time_s - t0_s) * RATE_HZ) - self._lead - mic_index
        self._offsets.append(measured)
        if self._offset is None:
            self._offset = measured
        else:
            typical = round(statistics.median(self._offsets))
            if abs(typical - self._offset) > self._resync:
                log.debug("echo reference re-aligned by %d samples", typical - self._offset)
                self._offset = typical
                self.resyncs += 1
        return mic_index + self._offset

    def frame(self, index: int | None) -> Frame:
        """FRAME_SAMPLES of reference from `index` on; silence where nothing is known."""
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if index is None:
            return out
        lo = max(index, self._hist_start)
        hi = min(index + FRAME_SAMPLES, self._hist_start + self._stored)
        if hi > lo:
            out[lo - index : hi - index] = self._store[
                lo - self._hist_start : hi - self._hist_start
            ]
        return out

    def speaker_heard(self, index: int | None, tail_samples: int) -> bool:
        """The microphone frame at reference `index` may hear the speaker (half-duplex)."""
        if index is None:
            return False
        return self.loud_until >= index - tail_samples


class EchoProcessor:
    """Runs the plan on the microphone's chunks; see the module docstring.

    `on_chunk(pcm)` receives processed chunks of the same size on the event loop; `mic_time()`
    gives the ADC time of the newest captured block (on the capture's clock, the one the
    playback stamps with); `take_preroll()` replaces the capture's for the same reason: the
    pre-roll of a turn must be processed audio too.
    """

    def __init__(
        self,
        plan: EchoPlan,
        reference: PlaybackReference | None,
        on_chunk: Callable[[bytes], None],
        *,
        chunk_bytes: int,
        preroll_chunks: int,
        mic_time: Callable[[], float],
        max_queue_chunks: int = 100,
    ) -> None:
        self.plan = plan
        self._reference = reference
        self._on_chunk = on_chunk
        self._chunk_bytes = chunk_bytes
        self._preroll: deque[tuple[float, bytes]] = deque(maxlen=max(1, preroll_chunks))
        # Only chunks this recent count as pre-roll: after the microphone was closed (a privacy
        # mute), audio from before it must never open a turn.
        self._preroll_window_s = (max(1, preroll_chunks) + 2) * chunk_bytes / (RATE_HZ * 2)
        self._mic_time = mic_time
        self._worker: ChunkWorker[tuple[bytes, float]] = ChunkWorker(
            "audio-echo",
            self._take,
            max_items=max_queue_chunks,
            behind="microphone echo processing is behind: %d chunks dropped",
        )
        self._tail_samples = RATE_HZ * plan.tail_ms // 1000
        self._closed = False
        self._pending = bytearray()
        self._pending_time_s = 0.0
        self._out = bytearray()
        self._mic_index = 0
        self._warm_frames = 0  # frames the canceller has processed with the speaker playing
        self.frames = 0
        self.gated_frames = 0
        self.cpu_s = 0.0

    # --- the event loop ---------------------------------------------------------------------

    @property
    def dropped_chunks(self) -> int:
        return self._worker.dropped

    async def start(self) -> None:
        self._worker.start()

    async def aclose(self) -> None:
        """Stops delivering at once (the daemon is stopping), then ends the thread."""
        self._closed = True
        await self._worker.aclose()

    def submit(self, chunk: bytes) -> None:
        """A 16 kHz mono chunk from capture (on the loop): queued, never processed here."""
        if not self._closed:
            self._worker.submit((chunk, self._mic_time()))

    def take_preroll(self) -> list[bytes]:
        """The newest processed chunks, oldest first, taken once (as Capture.take_preroll)."""
        oldest_s = time.monotonic() - self._preroll_window_s
        chunks = [chunk for at_s, chunk in self._preroll if at_s >= oldest_s]
        self._preroll.clear()
        return chunks

    def forget_preroll(self) -> None:
        """The privacy mute: nothing processed so far may go out as a later turn's pre-roll."""
        self._preroll.clear()

    def _deliver(self, chunk: bytes) -> None:
        if self._closed:
            return
        self._preroll.append((time.monotonic(), chunk))
        self._on_chunk(chunk)

    @property
    def cpu_us_per_frame(self) -> float:
        return self.cpu_s / self.frames * 1e6 if self.frames else 0.0

    # --- the echo thread ---------------------------------------------------------------------

    def _take(self, item: tuple[bytes, float]) -> bool:
        """One queued chunk; whole chunks of processed audio go to the loop. False: it is gone."""
        chunk, adc_time_s = item
        if not self._pending:
            self._pending_time_s = adc_time_s
        self._pending += chunk
        while len(self._pending) >= _FRAME_BYTES:
            frame = np.frombuffer(self._pending, dtype="<i2", count=FRAME_SAMPLES).copy()
            del self._pending[:_FRAME_BYTES]
            started = time.thread_time()
            processed = self._process(frame, self._pending_time_s)
            self.cpu_s += time.thread_time() - started
            self.frames += 1
            self._pending_time_s += FRAME_SAMPLES / RATE_HZ
            self._mic_index += FRAME_SAMPLES
            self._out += processed.astype("<i2", copy=False).tobytes()
        while len(self._out) >= self._chunk_bytes:
            out = bytes(self._out[: self._chunk_bytes])
            del self._out[: self._chunk_bytes]
            if not self._worker.to_loop(self._deliver, out):
                return False
        return True

    def _process(self, near: Frame, adc_time_s: float) -> Frame:
        reference = self._reference
        index = reference.index_for(adc_time_s, self._mic_index) if reference else None
        gating = self.plan.mode == "half-duplex"
        if gating and reference is not None and reference.speaker_heard(index, self._tail_samples):
            self.gated_frames += 1
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        processor = self.plan.processor
        if processor is None:
            return near
        far = reference.frame(index) if reference is not None else np.zeros_like(near)
        try:
            out = processor.process(near, far)
        except Exception as exc:  # a library fault must not silence the microphone
            # Safe from here on: the microphone is muted while the speaker plays (and STATUS,
            # which reads `plan`, says why) rather than the answer heard as the user.
            log.error("the %s canceller failed (%s): half-duplex from now on", processor.name, exc)
            self.plan = EchoPlan(
                "half-duplex",
                fallback_reason(processor.name, f"it failed: {exc}"),
                None,
                self.plan.tail_ms,
            )
            return self._process(near, adc_time_s)
        warming = self._warm_frames < WARM_UP_FRAMES and self.plan.mode == "cancel"
        if warming and reference is not None and reference.speaker_heard(index, 0):
            self._warm_frames += 1
            self.gated_frames += 1
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        return out
