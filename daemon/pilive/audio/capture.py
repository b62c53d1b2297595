"""Microphone -> 16 kHz mono s16le chunks for the Live API (`realtimeInput.audio`,
`audio/pcm;rate=16000`), with pre-roll so the first syllable after a press is never clipped.

Threads: the device callback (PortAudio's thread, or the file/null backend's) only stamps the
heartbeat and hands the bytes PortAudio already copied to the event loop with
`call_soon_threadsafe`. Down-mixing, resampling and chunking run on the loop, in `_receive`: they
cost tens of microseconds per 20 ms block (soxr on one channel), cheaper than a hop to a worker
thread and back, and doing them in the callback would hold the GIL inside PortAudio's real-time
thread, where any delay becomes an input overflow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from pilive.audio import converter as pcm_converter
from pilive.audio.backends import (
    INPUT_OVERFLOW,
    PA_ABORT,
    PA_CONTINUE,
    SAMPLE_BYTES,
    AudioBackend,
    AudioStream,
    TimeInfo,
    choose_format,
    find_device,
)
from pilive.audio.backends.supervisor import StreamSupervisor, SupervisedDevice
from pilive.live.wire import INPUT_AUDIO_RATE_HZ

if TYPE_CHECKING:
    from pilive.audio.resample import PcmConverter

log = logging.getLogger(__name__)

RATE_HZ = INPUT_AUDIO_RATE_HZ  # what the Live API takes (one home: live/wire_rules.py)


class _Generation:
    """Per-open state: data from a stream that has since been replaced is recognised and dropped."""

    def __init__(self, converter: PcmConverter | None) -> None:
        self.converter = converter
        self.pending = bytearray()


class Capture(SupervisedDevice):
    """Delivers `on_chunk(pcm16k)` on the event loop, every `chunk_ms`, while the device works.

    `device` is "default" or a case-insensitive substring of the device name. `rate_hz` and
    `channels` force the device format (else 16 kHz mono when supported, else a rate it takes).
    """

    def __init__(
        self,
        backend: AudioBackend,
        on_chunk: Callable[[bytes], None],
        *,
        device: str = "default",
        chunk_ms: int = 20,
        preroll_ms: int = 300,
        rate_hz: int | None = None,
        channels: int | None = None,
        overflow_log_interval_s: float = 30.0,
        stall_timeout_s: float = 3.0,
    ) -> None:
        if not 5 <= chunk_ms <= 1000:
            raise ValueError(f"chunk_ms must be between 5 and 1000, got {chunk_ms}")
        if preroll_ms < 0:
            raise ValueError(f"preroll_ms must be >= 0, got {preroll_ms}")
        self._backend = backend
        self._on_chunk = on_chunk
        self.device = device
        self.chunk_ms = chunk_ms
        self.chunk_bytes = RATE_HZ * chunk_ms // 1000 * SAMPLE_BYTES
        self._forced_rate_hz = rate_hz
        self._forced_channels = channels
        self._preroll: deque[bytes] = deque(maxlen=-(-preroll_ms // chunk_ms))
        self._overflow_log_interval_s = overflow_log_interval_s
        self._overflow_logged_s = -overflow_log_interval_s
        self._generation: _Generation | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.device_name: str | None = None
        self.device_rate_hz: int | None = None
        self.device_channels: int | None = None
        self.chunks = 0
        self.overflows = 0
        self.paused = False  # closed on purpose (the privacy mute), not failed
        self.last_callback_adc_s = 0.0  # PortAudio's capture time of the latest block (its clock)
        self.last_callback_s = 0.0  # the latest block's callback time (PortAudio's clock)
        self._supervisor = StreamSupervisor(
            f"input {device!r}", self._open_stream, stall_timeout_s=stall_timeout_s
        )

    # --- state for LEDs, STATUS and the watchdog --------------------------------------------

    @property
    def ended(self) -> bool:
        """The input finished normally (a non-looping WAV file ran out)."""
        return self._supervisor.ended

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts capturing; device trouble shows in `ok`/`error_message`, never as a raise."""
        self._loop = asyncio.get_running_loop()
        self._supervisor.start()

    async def aclose(self) -> None:
        await self._supervisor.aclose()
        self._generation = None

    @property
    def ok(self) -> bool:
        """The device works; False while paused, so nobody waits for its heartbeat then."""
        return not self.paused and self._supervisor.ok

    async def pause(self) -> None:
        """Close the device (the privacy mute): nothing is captured until `resume`, and the
        pre-roll from before the pause is forgotten."""
        self.paused = True
        await self.aclose()
        self._preroll.clear()

    async def resume(self) -> None:
        """Open the device again after `pause` (or for the first time, after a muted start)."""
        self.paused = False
        await self.start()

    def take_preroll(self) -> list[bytes]:
        """The last `preroll_ms` of chunks, oldest first, for sending right after activityStart;
        taken once (a second press right after does not resend them)."""
        chunks = list(self._preroll)
        self._preroll.clear()
        return chunks

    @property
    def held_s(self) -> float:
        """How much of what the device delivered is not yet in a chunk: what the resampler holds
        (with its filter's delay) plus the part of a chunk waiting to fill. Read in `on_chunk`
        it is the age of that chunk's newest sample beyond the device block's own age."""
        generation = self._generation
        if generation is None:
            return 0.0
        held_s = len(generation.pending) / SAMPLE_BYTES / RATE_HZ
        if generation.converter is not None:
            held_s += generation.converter.latency_s
        return held_s

    def take_partial(self) -> bytes:
        """The audio that arrived after the last whole chunk, now (b"" when none): a release sends
        it with activityEnd instead of waiting up to `chunk_ms` for the chunk to fill. The next
        chunk starts where it ends, so nothing is sent twice or lost; it stays in the pre-roll."""
        generation = self._generation
        if generation is None or not generation.pending:
            return b""
        partial = bytes(generation.pending)
        generation.pending.clear()
        self._preroll.append(partial)
        return partial

    # --- the device thread ------------------------------------------------------------------

    def _open_stream(self) -> AudioStream:
        """Runs in a worker thread: resolve the name again (devices come and go), pick a format."""
        device = find_device(self._backend, self.device, "input")
        rate_hz, channels = choose_format(
            self._backend,
            device,
            "input",
            RATE_HZ,
            rate_hz=self._forced_rate_hz,
            channels=self._forced_channels,
        )
        # Steady: from a 48 kHz microphone every block gives its 20 ms at once (soxr would hold
        # back up to 37 ms and give it out in bursts).
        converter = pcm_converter(rate_hz, channels, RATE_HZ, 1, steady=True)
        generation = _Generation(converter)
        self._generation = generation
        self.device_name, self.device_rate_hz, self.device_channels = device.name, rate_hz, channels
        loop = self._loop
        assert loop is not None
        receive = self._receive
        beat = self._supervisor.beat

        def callback(
            in_data: bytes | None, frame_count: int, time_info: TimeInfo, status: int
        ) -> tuple[bytes | None, int]:
            beat()
            try:
                loop.call_soon_threadsafe(receive, generation, in_data, time_info, status)
            except RuntimeError:  # the loop is closed: the daemon is shutting down
                return None, PA_ABORT
            return None, PA_CONTINUE

        frames_per_buffer = rate_hz * self.chunk_ms // 1000
        log.info(
            "input %r: %d Hz, %d ch%s",
            device.name,
            rate_hz,
            channels,
            ", resampled to 16 kHz mono" if converter else "",
        )
        return self._backend.open(
            device,
            "input",
            rate_hz=rate_hz,
            channels=channels,
            frames_per_buffer=frames_per_buffer,
            callback=callback,
        )

    # --- the event loop ---------------------------------------------------------------------

    def _receive(
        self, generation: _Generation, data: bytes | None, time_info: TimeInfo, status: int
    ) -> None:
        if generation is not self._generation or not data:
            return
        self.last_callback_adc_s = time_info.get("input_buffer_adc_time", 0.0)
        self.last_callback_s = time_info.get("current_time", 0.0)
        if status & INPUT_OVERFLOW:
            self._count_overflow()
        if generation.converter is not None:
            data = generation.converter.convert(data)
        size = self.chunk_bytes
        if not generation.pending and len(data) == size:
            self._deliver(data)  # the common case at 16 kHz mono: no copy at all
            return
        pending = generation.pending
        pending += data
        while len(pending) >= size:
            chunk = bytes(pending[:size])
            del pending[:size]
            self._deliver(chunk)

    def _deliver(self, chunk: bytes) -> None:
        self.chunks += 1
        self._preroll.append(chunk)
        self._on_chunk(chunk)

    def _count_overflow(self) -> None:
        self.overflows += 1
        now_s = time.monotonic()
        if now_s - self._overflow_logged_s >= self._overflow_log_interval_s:
            self._overflow_logged_s = now_s
            log.warning(
                "input %r overflowed (%d so far): the audio thread was not scheduled in time",
                self.device,
                self.overflows,
            )
