"""A simulated room: a microphone that hears the user's WAV file and the daemon's own speaker.

`RoomBackend` is one duplex device: a "room:mic" whose input is the WAV file (or silence) plus
what the "room:speaker" played, carried through `room.EchoPath` (device latency, a synthetic
room impulse response, a gain, noise), and a speaker that may also write a WAV file. One thread
runs both streams' callbacks on one sample clock, as a sound card's shared clock does, so the
echo's delay is exactly the room's and never drifts; the callbacks get PortAudio's arguments
(time_info on the monotonic clock), so Capture and Playback run their real code paths.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pilive.audio.backends import (
    PA_COMPLETE,
    PA_CONTINUE,
    SAMPLE_BYTES,
    AudioStream,
    DeviceInfo,
    Direction,
    StreamCallback,
)
from pilive.audio.backends.simulated import (
    input_source,
    output_sink,
    read_wav_format,
    require_supported,
)
from pilive.audio.resample import PcmConverter
from pilive.audio.room import EchoPath, RoomOptions
from pilive.live.wire import INPUT_AUDIO_RATE_HZ, OUTPUT_AUDIO_RATE_HZ

_STALL_S = 1.0  # behind by more than this (a stopped machine): skip ahead, do not burst


class _RoomStream:
    """One open stream of the room; the duplex thread calls `serve()` when it is due."""

    def __init__(
        self,
        room: RoomBackend,
        direction: Direction,
        *,
        rate_hz: int,
        channels: int,
        frames_per_buffer: int,
        callback: StreamCallback,
        source: Callable[[int], bytes | None] | None = None,
        sink: Callable[[bytes], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.direction = direction
        self._room = room
        self._rate_hz = rate_hz
        self._channels = channels
        self._frames = frames_per_buffer
        self._callback = callback
        self._source = source
        self._sink = sink
        self._on_close = on_close
        self._active = True
        self._ended = False
        # Held while a callback runs, so close() never closes a WAV file under a callback.
        self._serving = threading.RLock()
        self._start_index = 0  # room sample index of this stream's first sample
        self._blocks = 0
        self._played = 0  # speaker: room-rate samples handed to the echo path
        self._converter: PcmConverter | None = None
        if direction == "output":
            self._converter = PcmConverter(rate_hz, channels, room.rate_hz, 1)

    @property
    def start_index(self) -> int:
        return self._start_index

    def begin(self, now_v_s: float) -> None:
        """Called by the duplex thread (under its lock) when the stream joins the clock."""
        self._start_index = round(now_v_s * self._room.rate_hz)
        self._blocks = 0
        self._played = 0

    @property
    def next_due_v_s(self) -> float:
        """Room time (s) of the next callback: a speaker block when it starts to play, a
        microphone block when its last sample has been captured."""
        room_rate = self._room.rate_hz
        start_s = self._start_index / room_rate
        blocks = self._blocks + (1 if self.direction == "input" else 0)
        return start_s + blocks * self._frames / self._rate_hz

    def skip_to(self, now_v_s: float) -> None:
        """After a stall: continue from now instead of catching up."""
        self.begin(now_v_s)
        if self._converter is not None:
            self._converter.reset()

    def serve(self, epoch_s: float) -> None:
        with self._serving:
            if self._active:
                self._serve(epoch_s)

    def _serve(self, epoch_s: float) -> None:
        room_rate = self._room.rate_hz
        if self.direction == "input":
            start = self._start_index + round(
                self._blocks * self._frames * room_rate / self._rate_hz
            )
            assert self._source is not None
            user = self._source(self._frames)
            if user is None:
                self._finish(ended=True)
                return
            echo = self._room.path.hear(start, self._frames)
            mixed = np.frombuffer(user, dtype="<i2").astype(np.float64).reshape(-1, self._channels)
            mixed += (echo * 32768.0)[:, None]
            in_data = np.clip(np.round(mixed), -32768, 32767).astype("<i2").tobytes()
            adc_s = epoch_s + start / room_rate
            now_s = time.monotonic()
            time_info = {
                "input_buffer_adc_time": adc_s,
                "current_time": now_s,
                "output_buffer_dac_time": 0.0,
            }
            self._blocks += 1
            _, flag = self._callback(in_data, self._frames, time_info, 0)
        else:
            dac_s = epoch_s + self.next_due_v_s
            time_info = {
                "input_buffer_adc_time": 0.0,
                "current_time": time.monotonic(),
                "output_buffer_dac_time": dac_s,
            }
            out_data, flag = self._callback(None, self._frames, time_info, 0)
            expected = self._frames * self._channels * SAMPLE_BYTES
            if out_data is None or len(out_data) != expected:
                got = None if out_data is None else len(out_data)
                raise ValueError(f"output callback returned {got} bytes, not {expected}")
            self._blocks += 1
            if self._sink is not None:
                self._sink(out_data)
            assert self._converter is not None
            mono = np.frombuffer(self._converter.convert(out_data), dtype="<i2")
            self._room.path.play(mono / 32768.0, at=self._start_index + self._played)
            self._played += len(mono)
        if flag != PA_CONTINUE:
            self._finish(ended=flag == PA_COMPLETE)

    def _finish(self, *, ended: bool) -> None:
        self._ended = ended
        self._active = False
        self._room.detach(self)

    def is_active(self) -> bool:
        return self._active and self._room.running

    @property
    def ended(self) -> bool:
        return self._ended

    def close(self) -> None:
        self._active = False
        with self._serving:
            pass
        self._room.detach(self, wait=True)
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


class RoomBackend:
    """A microphone and a speaker in one simulated room (see the module docstring).

    The microphone's format is the WAV file's (16 kHz mono without one); the speaker plays any
    rate (`output_rate_hz` forces one) in one or two channels.
    """

    name = "room"

    def __init__(
        self,
        options: RoomOptions,
        *,
        input_path: Path | None = None,
        output_path: Path | None = None,
        realtime: bool = True,
        loop: bool = True,
        output_rate_hz: int | None = None,
    ) -> None:
        self.options = options
        self._input_path = input_path
        self._output_path = output_path
        self._realtime = realtime
        self._loop = loop
        self._output_rate_hz = output_rate_hz
        if input_path is not None:
            self._mic_format = read_wav_format(input_path)
        else:
            self._mic_format = (INPUT_AUDIO_RATE_HZ, 1)
        self.rate_hz = self._mic_format[0]
        self.path = EchoPath(self.rate_hz, options)
        self._lock = threading.Lock()
        self._streams: list[_RoomStream] = []
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._epoch_s = 0.0
        self._now_v_s = 0.0
        self.running = False
        # time.monotonic() at which the microphone's first sample (of its WAV file) was heard:
        # sample k of the file is heard at mic_started_s + k / rate_hz (for measurements).
        self.mic_started_s: float | None = None

    # --- AudioBackend ------------------------------------------------------------------------

    def devices(self) -> list[DeviceInfo]:
        rate_hz, channels = self._mic_format
        speaker_rate_hz = self._output_rate_hz or OUTPUT_AUDIO_RATE_HZ
        return [
            DeviceInfo("room:mic", channels, 0, rate_hz, 0),
            DeviceInfo("room:speaker", 0, 2, speaker_rate_hz, 1),
        ]

    def default_device(self, direction: Direction) -> DeviceInfo | None:
        return next((d for d in self.devices() if d.channels(direction) > 0), None)

    def is_supported(
        self, device: DeviceInfo, direction: Direction, rate_hz: int, channels: int
    ) -> bool:
        if direction == "input":
            return self._mic_format == (rate_hz, channels)
        return (
            self._output_rate_hz in (None, rate_hz)
            and 8000 <= rate_hz <= 192000
            and (1 <= channels <= 2)
        )

    def open(
        self,
        device: DeviceInfo,
        direction: Direction,
        *,
        rate_hz: int,
        channels: int,
        frames_per_buffer: int,
        callback: StreamCallback,
    ) -> AudioStream:
        require_supported(self, device, direction, rate_hz, channels)
        if direction == "input":
            source, on_close = input_source(
                self._input_path,
                loop=self._loop,
                frames_per_buffer=frames_per_buffer,
                channels=channels,
            )
            stream = _RoomStream(
                self,
                "input",
                rate_hz=rate_hz,
                channels=channels,
                frames_per_buffer=frames_per_buffer,
                callback=callback,
                source=source,
                on_close=on_close,
            )
        else:
            sink, closer = output_sink(self._output_path, rate_hz=rate_hz, channels=channels)
            stream = _RoomStream(
                self,
                "output",
                rate_hz=rate_hz,
                channels=channels,
                frames_per_buffer=frames_per_buffer,
                callback=callback,
                sink=sink,
                on_close=closer,
            )
        self._attach(stream)
        return stream

    def close(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()

    # --- the duplex clock ----------------------------------------------------------------------

    def _attach(self, stream: _RoomStream) -> None:
        with self._lock:
            if self._thread is None:
                self._epoch_s = time.monotonic() - self._now_v_s
                self.running = True
                self._thread = threading.Thread(target=self._run, name="audio-room", daemon=True)
                self._thread.start()
            stream.begin(self._virtual_now())
            if stream.direction == "input":
                self.mic_started_s = self._epoch_s + stream.start_index / self.rate_hz
            self._streams.append(stream)
        self._wake.set()

    def detach(self, stream: _RoomStream, *, wait: bool = False) -> None:
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)
            thread = self._thread
        self._wake.set()
        if wait and thread is not None and threading.current_thread() is not thread:
            with self._lock:
                last = not self._streams
            if last:
                thread.join()

    def _virtual_now(self) -> float:
        if self._realtime:
            return max(self._now_v_s, time.monotonic() - self._epoch_s)
        return self._now_v_s

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._streams:
                        self._thread = None
                        self.running = False
                        return
                    # A speaker block due at the same moment goes first: its sound is in the
                    # room before the microphone block that ends then is read.
                    stream = min(
                        self._streams, key=lambda s: (s.next_due_v_s, s.direction == "input")
                    )
                    due_v_s = stream.next_due_v_s
                if self._realtime:
                    wait_s = self._epoch_s + due_v_s - time.monotonic()
                    if wait_s > 0:
                        self._wake.clear()
                        self._wake.wait(min(wait_s, 0.05))
                        continue  # a stream may have come or gone meanwhile
                    if wait_s < -_STALL_S:
                        with self._lock:
                            now_v_s = time.monotonic() - self._epoch_s
                            for each in self._streams:
                                each.skip_to(now_v_s)
                        continue
                with self._lock:
                    if stream not in self._streams:
                        continue
                    self._now_v_s = max(self._now_v_s, due_v_s)
                stream.serve(self._epoch_s)
        finally:
            with self._lock:
                self._thread = None
                self.running = False
