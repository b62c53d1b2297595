"""Answer audio (24 kHz mono s16le from `serverContent.modelTurn.parts[].inlineData`) -> speaker.

Data path: `write()` on the event loop puts the network bytes straight into the C ring buffer
(no copy when the device plays 24 kHz mono; soxr on the write side when it does not), and the
device callback does `ring.read_into(out)` and nothing else; PyAudio only accepts `bytes` back, so
that one 10 ms block is copied once more. Gain, prebuffer, underrun zero-fill and the barge-in fade
all happen inside the ring, in C.

When an answer arrives faster than real time and the ring is full, the rest waits in `_backlog`
(the same bytes objects, sliced with memoryview, never copied); a feeder thread sleeps in
`ring.wait_writable()` (GIL released) and moves it in as the device drains. All ring writes take
one lock, so the ring still has a single producer at any instant.

The backlog is bounded by time (`max_backlog_s` of audio beyond the ring): a server sending
faster than real time without end must not grow the daemon until a Pi runs out of memory. What
does not fit is the newest audio, and once an answer has been cut the rest of that answer is
dropped too, so it plays from its start up to the cut without a hole in the middle. The cut is
logged when it happens and again, with the seconds dropped, when the answer ends;
`answer_dropped_s` counts them for the health line.

Answer audio at a rate other than 24 kHz (`inlineData.mimeType` "audio/pcm;rate=N") is resampled
to the device rate like the rest; a rate no speaker plays (outside 8..192 kHz) is dropped with a
warning once per answer.

Earcons share the ring, queued at answer boundaries: mixing them in the callback would break the
"callback only copies" rule, and a mixer thread would add a copy and a period of latency to every
answer byte, eating the 30 ms barge-in budget. Earcons happen at turn edges anyway (press: after
the barge-in flush; release: before the answer starts; connected/offline/error: between answers),
so an earcon requested while no answer is playing goes into the ring at once and an answer that
arrives meanwhile queues behind it (an earcon is <= 250 ms, so it is never cut and delays nothing
noticeably); one requested mid-answer waits for `end_of_answer()` rather than splicing itself
into the speech.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from pilive.audio import converter, tones
from pilive.audio.backends import (
    OUTPUT_UNDERFLOW,
    PA_CONTINUE,
    SAMPLE_BYTES,
    AudioBackend,
    AudioStream,
    TimeInfo,
    choose_format,
    find_device,
)
from pilive.audio.backends.supervisor import StreamSupervisor, SupervisedDevice
from pilive.live.wire import OUTPUT_AUDIO_RATE_HZ

if TYPE_CHECKING:
    from pilive.audio._ringbuf import RingBuffer
    from pilive.audio.resample import PcmConverter

log = logging.getLogger(__name__)

RATE_HZ = OUTPUT_AUDIO_RATE_HZ  # what the Live API sends (one home: live/wire_rules.py)
MIN_ANSWER_RATE_HZ = 8000  # answer rates outside this range are dropped, not resampled
MAX_ANSWER_RATE_HZ = 192000
_END: Final = "end-of-stream"  # backlog marker: call ring.end_stream() when reached

PcmData = bytes | bytearray | memoryview


def volume_to_gain(volume_percent: float) -> float:
    """Perceptual volume curve: gain = (percent / 100) ** 3, PulseAudio's cubic mapping.

    Loudness is roughly logarithmic in amplitude, so a linear slider crams everything audible into
    its top third. The cube gives 50 % = -18 dB, 25 % = -36 dB, 10 % = -60 dB, 0 % = silence.
    """
    if not 0 <= volume_percent <= 100:
        raise ValueError(f"volume_percent must be between 0 and 100, got {volume_percent}")
    return float((volume_percent / 100) ** 3)


class Playback(SupervisedDevice):
    """Plays answer audio and earcons on one output device; survives the device going away.

    `device` is "default" or a case-insensitive substring of the device name; `rate_hz` and
    `channels` force the device format (else 24 kHz mono when supported, else a rate it takes).
    """

    def __init__(
        self,
        backend: AudioBackend,
        *,
        device: str = "default",
        prebuffer_ms: int = 60,
        period_ms: int = 10,
        ring_ms: int = 1000,
        fade_ms: float = 4.0,
        volume_percent: float = 100.0,
        rate_hz: int | None = None,
        channels: int | None = None,
        stall_timeout_s: float = 3.0,
        on_drained: Callable[[], None] | None = None,
        earcon_volume_percent: float = 100.0,
        max_backlog_s: float = 120.0,
        reference_ms: int = 0,
    ) -> None:
        if not 0 <= prebuffer_ms < ring_ms:
            raise ValueError(f"prebuffer_ms must be in 0..{ring_ms - 1}, got {prebuffer_ms}")
        if not 0 <= max_backlog_s <= 3600:
            raise ValueError(f"max_backlog_s must be between 0 and 3600, got {max_backlog_s}")
        if not 2 <= period_ms <= 100:
            raise ValueError(f"period_ms must be between 2 and 100, got {period_ms}")
        self._backend = backend
        self.device = device
        self.prebuffer_ms = prebuffer_ms
        self.period_ms = period_ms
        self.ring_ms = ring_ms
        self.fade_ms = fade_ms
        self._gain = volume_to_gain(volume_percent)
        self._volume_percent = volume_percent
        self._forced_rate_hz = rate_hz
        self._forced_channels = channels
        self._lock = threading.Lock()
        self._ring: RingBuffer | None = None
        self._format: tuple[int, int] | None = None
        self._converter: PcmConverter | None = None
        self._converter_rate_hz = RATE_HZ  # the answer rate `_converter` takes
        self._backlog: deque[PcmData | str] = deque()
        self.max_backlog_s = max_backlog_s
        # The ring's tap keeps this much of what the device played, for the echo canceller.
        self.reference_ms = reference_ms
        self._backlog_bytes = 0  # audio bytes in `_backlog` (device format)
        self._backlog_limit_bytes = 0  # set when the device format is known
        self._cut_bytes = 0  # of the current answer, dropped at the bound (device format)
        self._cut_warned = False
        self._bad_rate_warned = False
        self.answer_dropped_s = 0.0  # answer audio dropped at the bound, in total
        self._backlog_ready = threading.Event()
        self._feeder: threading.Thread | None = None
        self._closing = False
        self._answer_active = False
        self._pending_earcons: list[str] = []
        # Earcons sit below the voice: scaled once when synthesised, then the volume applies.
        self._earcon_gain = volume_to_gain(earcon_volume_percent)
        self._earcon_cache: dict[tuple[str, int, int], bytes] = {}
        self.device_name: str | None = None
        self.device_underflows = 0
        self.dropped_bytes = 0  # written while no device format was known yet
        self.answer_started_s = 0.0  # time.monotonic() of the first write() of an answer
        self.audio_started_s = 0.0  # ... and of the callback that first handed it to the device
        self._awaiting_audio = False
        # Set by end_of_answer(): the callback reports (once, on the loop) when it played out.
        self._on_drained = on_drained
        self._drain_watch = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor = StreamSupervisor(
            f"output {device!r}", self._open_stream, stall_timeout_s=stall_timeout_s
        )

    # --- state ------------------------------------------------------------------------------

    @property
    def ring(self) -> RingBuffer | None:
        """The ring buffer (counters: underruns, overruns, bytes_read...), once a device opened."""
        return self._ring

    @property
    def device_format(self) -> tuple[int, int] | None:
        """(rate_hz, channels) the device was opened with."""
        return self._format

    @property
    def volume_percent(self) -> float:
        return self._volume_percent

    @volume_percent.setter
    def volume_percent(self, value: float) -> None:
        self._gain = volume_to_gain(value)
        self._volume_percent = value
        if self._ring is not None:
            self._ring.gain = self._gain

    @property
    def is_playing(self) -> bool:
        """Audio is queued or playing (for the "speaking" LED and for barge-in decisions)."""
        ring = self._ring
        return bool(self._backlog) or (ring is not None and ring.available > 0)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the device; trouble shows in `ok`/`error_message`, never as a raise."""
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._feeder = threading.Thread(target=self._feed, name="audio-feeder", daemon=True)
        self._feeder.start()
        self._supervisor.start()

    async def aclose(self) -> None:
        await self._supervisor.aclose()
        self._closing = True
        self._backlog_ready.set()
        feeder, self._feeder = self._feeder, None
        if feeder is not None:
            await asyncio.to_thread(feeder.join)

    # --- the producer side (event loop) -----------------------------------------------------

    def write(self, pcm: PcmData, rate_hz: int = RATE_HZ) -> None:
        """Queues answer audio, mono s16le at `rate_hz`; never blocks. Beyond the backlog bound
        the rest of the answer is dropped (see the module docstring)."""
        if not self._answer_active:
            self._answer_active = True
            self.answer_started_s = time.monotonic()
            self._awaiting_audio = True
        if rate_hz != self._converter_rate_hz and not self._switch_rate(rate_hz):
            return
        if self._cut_bytes:
            self._cut_bytes += self._device_bytes(len(pcm), rate_hz)
            return
        converter = self._converter
        if converter is not None:
            pcm = converter.convert(pcm)
        self._push(pcm, answer=True)

    def _switch_rate(self, rate_hz: int) -> bool:
        """Resample from `rate_hz` from now on; False (and a warning) for a rate no speaker
        plays, or while no device format is known (the audio would be dropped anyway)."""
        if not MIN_ANSWER_RATE_HZ <= rate_hz <= MAX_ANSWER_RATE_HZ:
            if not self._bad_rate_warned:
                self._bad_rate_warned = True
                log.warning("answer audio at %d Hz dropped: not a rate a speaker plays", rate_hz)
            return False
        fmt = self._format
        if fmt is None:
            return False
        if self._converter is not None:  # the old rate's tail, before the new rate's audio
            self._push(self._converter.flush(), answer=True)
        self._converter = converter(rate_hz, 1, *fmt)
        self._converter_rate_hz = rate_hz
        log.debug("answer audio at %d Hz, resampled to %d Hz", rate_hz, fmt[0])
        return True

    def _device_bytes(self, nbytes: int, rate_hz: int) -> int:
        """How many device-format bytes `nbytes` of mono answer audio at `rate_hz` become."""
        fmt = self._format
        if fmt is None:
            return 0
        return nbytes * fmt[0] * fmt[1] // rate_hz

    def end_of_answer(self) -> None:
        """The answer is complete (`turnComplete`/`generationComplete`): play out the tail even
        below the prebuffer, without counting the drain as an underrun; then pending earcons."""
        if self._answer_active:
            self._answer_active = False
            if self._converter is not None:
                self._push(self._converter.flush(), answer=True)
            self._push(_END)
            self._drain_watch = self._on_drained is not None
        self._answer_ended()
        self._play_pending_earcons()

    def _answer_ended(self) -> None:
        """Say how much of the answer the bound cut off, once, and be ready for the next."""
        cut_bytes, self._cut_bytes = self._cut_bytes, 0
        self._cut_warned = False
        self._bad_rate_warned = False
        fmt = self._format
        if cut_bytes and fmt is not None:
            dropped_s = cut_bytes / (fmt[0] * fmt[1] * SAMPLE_BYTES)
            self.answer_dropped_s += dropped_s
            log.warning(
                "answer cut: %.1f s of answer audio beyond the %g s backlog were dropped",
                dropped_s,
                self.max_backlog_s,
            )

    def flush(self) -> None:
        """Barge-in (a press while speaking, or the server's `interrupted`): drop everything not
        yet played; the ring fades the current block out instead of clicking."""
        with self._lock:
            self._backlog.clear()
            self._backlog_bytes = 0
            self._backlog_ready.clear()
            if self._ring is not None:
                self._ring.clear()
        if self._converter is not None:
            self._converter.reset()
        self._answer_active = False
        self._awaiting_audio = False
        self._drain_watch = False
        self._answer_ended()
        self._play_pending_earcons()

    def play_earcon(self, name: str) -> None:
        """Plays an earcon now, or after the answer that is playing (see the module docstring)."""
        tones.check_name(name)  # an unknown name fails here, at the call, not later
        self._pending_earcons.append(name)
        if not self._answer_active:
            self._play_pending_earcons()

    def _play_pending_earcons(self) -> None:
        if self._format is None:  # no device yet: keep the latest few for when it opens
            del self._pending_earcons[:-4]
            return
        names, self._pending_earcons = self._pending_earcons, []
        for name in names:
            self._push(self._earcon_pcm(name, *self._format))
            self._push(_END)

    def _report_drained(self) -> None:
        """From the device thread: the finished answer has played out; tell the loop."""
        loop, on_drained = self._loop, self._on_drained
        if loop is not None and on_drained is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                loop.call_soon_threadsafe(on_drained)

    def _earcon_pcm(self, name: str, rate_hz: int, channels: int) -> bytes:
        key = (name, rate_hz, channels)
        pcm = self._earcon_cache.get(key)
        if pcm is None:
            pcm = tones.earcon(name, self._earcon_gain)
            to_device = converter(RATE_HZ, 1, rate_hz, channels)
            if to_device is not None:
                pcm = to_device.convert(pcm) + to_device.flush()
            self._earcon_cache[key] = pcm
        return pcm

    def _push(self, data: PcmData | str, *, answer: bool = False) -> None:
        """Into the ring, or behind what waits; answer audio only up to the backlog bound."""
        cut = False
        with self._lock:
            ring = self._ring
            if ring is None:
                if not isinstance(data, str):
                    self.dropped_bytes += len(data)
                return
            if not self._backlog:
                if data is _END:
                    ring.end_stream()
                    return
                assert not isinstance(data, str)
                written = self._write_fitting(ring, data)
                if written == len(data):
                    return
                data = memoryview(data)[written:]
            if isinstance(data, str):
                self._backlog.append(data)
            else:
                room = self._backlog_limit_bytes - self._backlog_bytes
                if answer and len(data) > room:
                    frame_bytes = self._format[1] * SAMPLE_BYTES if self._format else SAMPLE_BYTES
                    keep = max(0, room)
                    keep -= keep % frame_bytes
                    self._cut_bytes += len(data) - keep
                    cut = not self._cut_warned
                    self._cut_warned = True
                    data = memoryview(data)[:keep]
                if len(data):
                    self._backlog_bytes += len(data)
                    self._backlog.append(data)
            self._backlog_ready.set()
        if cut:
            log.warning(
                "answer audio arrives faster than it plays and %g s are waiting: dropping the "
                "rest of this answer",
                self.max_backlog_s,
            )

    @staticmethod
    def _write_fitting(ring: RingBuffer, data: PcmData) -> int:
        """Writes what fits without a short write (a short write counts as an overrun)."""
        size = min(len(data), ring.free & ~1)
        if size == 0:
            return 0
        if size == len(data):
            return ring.write(data)
        return ring.write(memoryview(data)[:size])

    def _feed(self) -> None:
        """The feeder thread: moves the backlog into the ring as the device drains it."""
        while True:
            self._backlog_ready.wait()
            if self._closing:
                return
            with self._lock:
                ring = self._ring
                head = self._backlog[0] if self._backlog else None
            if ring is None or head is None:
                self._backlog_ready.clear()
                continue
            if not isinstance(head, str):
                ring.wait_writable(min(len(head), ring.capacity // 4) & ~1, 0.1)
            with self._lock:
                if ring is not self._ring:
                    continue
                while self._backlog:
                    item = self._backlog[0]
                    if isinstance(item, str):
                        ring.end_stream()
                        self._backlog.popleft()
                        continue
                    written = self._write_fitting(ring, item)
                    self._backlog_bytes -= written
                    if written < len(item):
                        self._backlog[0] = memoryview(item)[written:]
                        break
                    self._backlog.popleft()
                if not self._backlog:
                    self._backlog_ready.clear()

    # --- the device (worker thread to open; PortAudio's thread to play) ----------------------

    def _open_stream(self) -> AudioStream:
        from pilive.audio._ringbuf import RingBuffer  # noqa: PLC0415 - C extension, built on install

        device = find_device(self._backend, self.device, "output")
        rate_hz, channels = choose_format(
            self._backend,
            device,
            "output",
            RATE_HZ,
            rate_hz=self._forced_rate_hz,
            channels=self._forced_channels,
        )
        frame_bytes = channels * SAMPLE_BYTES
        with self._lock:
            self._backlog.clear()  # audio queued while the device was gone is stale by now
            self._backlog_bytes = 0
            self._backlog_limit_bytes = int(self.max_backlog_s * rate_hz) * frame_bytes
            if self._ring is None or self._format != (rate_hz, channels):
                self._ring = RingBuffer(
                    rate_hz * self.ring_ms // 1000 * frame_bytes,
                    fade_samples=max(1, round(rate_hz * self.fade_ms / 1000)) * channels,
                    prebuffer_bytes=rate_hz * self.prebuffer_ms // 1000 * frame_bytes,
                    tap_bytes=rate_hz * self.reference_ms // 1000 * frame_bytes,
                )
                self._ring.gain = self._gain
                self._format = (rate_hz, channels)
                self._converter = converter(RATE_HZ, 1, rate_hz, channels)
                self._converter_rate_hz = RATE_HZ
            else:
                self._ring.clear()
            ring = self._ring
        self.device_name = device.name
        frames_per_buffer = rate_hz * self.period_ms // 1000
        out = bytearray(frames_per_buffer * frame_bytes)
        beat = self._supervisor.beat
        now_s = time.monotonic

        def callback(
            in_data: bytes | None, frame_count: int, time_info: TimeInfo, status: int
        ) -> tuple[bytes | None, int]:
            nonlocal out
            beat()
            if len(out) != frame_count * frame_bytes:
                out = bytearray(frame_count * frame_bytes)
            # The block is stamped for the echo reference (some hosts report no DAC time: 0).
            played = ring.read_into(out, time_info.get("output_buffer_dac_time") or now_s())
            if played and self._awaiting_audio:
                self._awaiting_audio = False
                self.audio_started_s = time.monotonic()
            if self._drain_watch and not played and not ring.flowing and not self._backlog:
                self._drain_watch = False
                self._report_drained()
            if status & OUTPUT_UNDERFLOW:
                self.device_underflows += 1
            return bytes(out), PA_CONTINUE

        log.info(
            "output %r: %d Hz, %d ch%s",
            device.name,
            rate_hz,
            channels,
            ", resampled from 24 kHz" if self._converter else "",
        )
        stream = self._backend.open(
            device,
            "output",
            rate_hz=rate_hz,
            channels=channels,
            frames_per_buffer=frames_per_buffer,
            callback=callback,
        )
        # Every earcon in this format, built here in the opening thread rather than on the event
        # loop at a press (a few ms each in plain Python, more on a Pi Zero); cached after.
        for name in tones.EARCONS:
            self._earcon_pcm(name, rate_hz, channels)
        return stream
