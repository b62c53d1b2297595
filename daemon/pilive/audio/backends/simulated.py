"""Simulated devices: a thread calls the stream callback exactly as PortAudio would.

`FileBackend` reads a WAV file as its microphone and writes a WAV file as its speaker; `NullBackend`
hears silence and discards. Both pace themselves by the monotonic clock (or run flat out), so
Capture and Playback run their real code paths, timing included.
"""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

from pilive.audio.backends import (
    PA_COMPLETE,
    PA_CONTINUE,
    SAMPLE_BYTES,
    AudioBackend,
    AudioDeviceError,
    AudioStream,
    DeviceInfo,
    Direction,
    StreamCallback,
)
from pilive.live.wire import OUTPUT_AUDIO_RATE_HZ


class _ThreadStream:
    """Calls the stream callback from its own thread, paced by the monotonic clock or flat out.

    `source(frames)` supplies input bytes (None at the end); `sink(data)` takes output bytes.
    """

    def __init__(
        self,
        *,
        name: str,
        rate_hz: int,
        channels: int,
        frames_per_buffer: int,
        callback: StreamCallback,
        realtime: bool,
        source: Callable[[int], bytes | None] | None = None,
        sink: Callable[[bytes], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._rate_hz = rate_hz
        self._frame_bytes = channels * SAMPLE_BYTES
        self._frames = frames_per_buffer
        self._callback = callback
        self._realtime = realtime
        self._source = source
        self._sink = sink
        self._on_close = on_close
        self._stop = threading.Event()
        self._ended = False
        self._active = True
        self._thread = threading.Thread(target=self._run, name=f"audio-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period_s = self._frames / self._rate_hz
        next_s = time.monotonic()
        try:
            while not self._stop.is_set():
                in_data = None
                if self._source is not None:
                    in_data = self._source(self._frames)
                    if in_data is None:
                        self._ended = True
                        return
                now_s = time.monotonic()
                time_info = {
                    "input_buffer_adc_time": now_s - period_s,
                    "current_time": now_s,
                    "output_buffer_dac_time": now_s + period_s,
                }
                out_data, flag = self._callback(in_data, self._frames, time_info, 0)
                if self._sink is not None:
                    expected = self._frames * self._frame_bytes
                    if out_data is None or len(out_data) != expected:
                        got = None if out_data is None else len(out_data)
                        raise ValueError(f"output callback returned {got} bytes, not {expected}")
                    self._sink(out_data)
                if flag != PA_CONTINUE:
                    self._ended = flag == PA_COMPLETE
                    return
                if self._realtime:
                    next_s += period_s
                    wait_s = next_s - time.monotonic()
                    if wait_s > 0:
                        self._stop.wait(wait_s)
                    elif wait_s < -1.0:
                        next_s = time.monotonic()  # stalled for a second: do not burst to catch up
        finally:
            self._active = False

    def is_active(self) -> bool:
        return self._active and self._thread.is_alive()

    @property
    def ended(self) -> bool:
        return self._ended

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


class _WavSource:
    """Reads s16le frames from a WAV file, looping or ending; short reads at the end are padded."""

    def __init__(self, path: Path, loop: bool) -> None:
        self._wav = wave.open(str(path), "rb")  # noqa: SIM115 - closed by close()
        self._loop = loop
        self._frame_bytes = self._wav.getnchannels() * SAMPLE_BYTES

    def read(self, frames: int) -> bytes | None:
        data = self._wav.readframes(frames)
        while len(data) < frames * self._frame_bytes and self._loop and self._wav.getnframes():
            self._wav.rewind()
            data += self._wav.readframes(frames - len(data) // self._frame_bytes)
        if not data:
            return None
        return data.ljust(frames * self._frame_bytes, b"\0")

    def close(self) -> None:
        self._wav.close()


def input_source(
    path: Path | None, *, loop: bool, frames_per_buffer: int, channels: int
) -> tuple[Callable[[int], bytes | None], Callable[[], None] | None]:
    """A simulated microphone's samples and how to let go of them: the WAV file's (again from
    its start when `loop`), or silence without one."""
    if path is not None:
        wav = _WavSource(path, loop)
        return wav.read, wav.close
    silence = bytes(frames_per_buffer * channels * SAMPLE_BYTES)

    def quiet(frames: int) -> bytes:
        return silence

    return quiet, None


def output_sink(
    path: Path | None, *, rate_hz: int, channels: int
) -> tuple[Callable[[bytes], None] | None, Callable[[], None] | None]:
    """A simulated speaker's sink and its close: a WAV file in the stream's format (what the
    tests and the demo listen to afterwards), or nothing without a path."""
    if path is None:
        return None, None
    writer = wave.open(str(path), "wb")  # noqa: SIM115 - closed with the stream
    writer.setnchannels(channels)
    writer.setsampwidth(SAMPLE_BYTES)
    writer.setframerate(rate_hz)
    return writer.writeframesraw, writer.close


def require_supported(
    backend: AudioBackend, device: DeviceInfo, direction: Direction, rate_hz: int, channels: int
) -> None:
    """What a real device does with a format it cannot take: refuse to open."""
    if not backend.is_supported(device, direction, rate_hz, channels):
        raise AudioDeviceError(f"{device.name}: {rate_hz} Hz, {channels} ch not supported")


def read_wav_format(path: Path) -> tuple[int, int]:
    """(rate_hz, channels) of a 16-bit PCM WAV file; a clear error for anything else."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != SAMPLE_BYTES:
                raise AudioDeviceError(
                    f"{path}: {8 * wav.getsampwidth()}-bit samples; only 16-bit PCM WAV is read"
                )
            return wav.getframerate(), wav.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise AudioDeviceError(f"{path}: not a PCM WAV file ({exc})") from exc
    except FileNotFoundError as exc:
        raise AudioDeviceError(f"{path}: no such file") from exc
    except OSError as exc:  # a directory, no permission, an I/O error
        raise AudioDeviceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


class FileBackend:
    """Input from a 16-bit WAV file (any rate and channel count: it is the "device" format), output
    to a WAV file. Paced in real time by default; `realtime=False` runs as fast as possible."""

    name = "file"

    def __init__(
        self,
        input_path: Path | None = None,
        output_path: Path | None = None,
        *,
        realtime: bool = True,
        loop: bool = False,
        output_rate_hz: int | None = None,
    ) -> None:
        self._input_path = input_path
        self._output_path = output_path
        self._realtime = realtime
        self._loop = loop
        self._output_rate_hz = output_rate_hz
        self._input_format = read_wav_format(input_path) if input_path is not None else None

    def devices(self) -> list[DeviceInfo]:
        found = []
        if self._input_path is not None and self._input_format is not None:
            rate_hz, channels = self._input_format
            found.append(DeviceInfo(f"file:{self._input_path.name}", channels, 0, rate_hz, 0))
        if self._output_path is not None:
            rate_hz = self._output_rate_hz or OUTPUT_AUDIO_RATE_HZ
            found.append(DeviceInfo(f"file:{self._output_path.name}", 0, 2, rate_hz, 1))
        return found

    def default_device(self, direction: Direction) -> DeviceInfo | None:
        return next((d for d in self.devices() if d.channels(direction) > 0), None)

    def is_supported(
        self, device: DeviceInfo, direction: Direction, rate_hz: int, channels: int
    ) -> bool:
        if direction == "input":
            return self._input_format == (rate_hz, channels)
        return (self._output_rate_hz in (None, rate_hz)) and 1 <= channels <= 2

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
            return _ThreadStream(
                name="file-in",
                rate_hz=rate_hz,
                channels=channels,
                frames_per_buffer=frames_per_buffer,
                callback=callback,
                realtime=self._realtime,
                source=source,
                on_close=on_close,
            )
        sink, on_close = output_sink(self._output_path, rate_hz=rate_hz, channels=channels)
        return _ThreadStream(
            name="file-out",
            rate_hz=rate_hz,
            channels=channels,
            frames_per_buffer=frames_per_buffer,
            callback=callback,
            realtime=self._realtime,
            sink=sink,
            on_close=on_close,
        )

    def close(self) -> None:
        pass


class NullBackend:
    """A microphone that hears silence and a speaker that discards, both at real-time pace."""

    name = "null"

    def __init__(self, *, realtime: bool = True) -> None:
        self._realtime = realtime

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("null", 2, 2, 48000, 0)]

    def default_device(self, direction: Direction) -> DeviceInfo | None:
        return self.devices()[0]

    def is_supported(
        self, device: DeviceInfo, direction: Direction, rate_hz: int, channels: int
    ) -> bool:
        return 1000 <= rate_hz <= 192000 and 1 <= channels <= 2

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
        silence = bytes(frames_per_buffer * channels * SAMPLE_BYTES)

        def source(frames: int) -> bytes:
            return silence

        def sink(data: bytes) -> None:
            pass

        return _ThreadStream(
            name=f"null-{direction}",
            rate_hz=rate_hz,
            channels=channels,
            frames_per_buffer=frames_per_buffer,
            callback=callback,
            realtime=self._realtime,
            source=source if direction == "input" else None,
            sink=sink if direction == "output" else None,
        )

    def close(self) -> None:
        pass
