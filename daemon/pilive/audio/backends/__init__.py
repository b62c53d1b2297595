"""The audio device edge: the only code that differs between a real sound card and a simulated one.

Capture and Playback talk to a backend through `AudioBackend`: list devices, ask whether a format
is supported, open a stream that calls `callback(in_data, frame_count, time_info, status_flags)`
on the backend's own thread, exactly as PortAudio (PyAudio) does. The `file` and `null` backends
run a thread that calls the same callback with the same arguments, so everything above this
module runs the same code path whatever the device.

Devices are chosen by name (a case-insensitive substring, or "default"), never by index: PortAudio
indices change when a USB device is plugged in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Direction = Literal["input", "output"]

# PortAudio's callback return codes and status flags (portaudio.h); PyAudio exports the same values.
PA_CONTINUE = 0
PA_COMPLETE = 1
PA_ABORT = 2
INPUT_UNDERFLOW = 0x01
INPUT_OVERFLOW = 0x02
OUTPUT_UNDERFLOW = 0x04
OUTPUT_OVERFLOW = 0x08

SAMPLE_BYTES = 2  # every stream is s16le

# Rates tried, in order, when a device cannot do the rate we want (common hardware rates first).
FALLBACK_RATES_HZ: tuple[int, ...] = (48000, 44100, 32000, 24000, 22050, 16000, 96000, 11025, 8000)

TimeInfo = Mapping[str, float]
StreamCallback = Callable[[bytes | None, int, TimeInfo, int], tuple[bytes | None, int]]


class AudioDeviceError(OSError):
    """A device could not be found or opened; the message says which and why."""


@dataclass(frozen=True)
class DeviceInfo:
    """One device as the backend reports it. `index` is the backend's handle, not a user setting."""

    name: str
    max_input_channels: int
    max_output_channels: int
    default_rate_hz: int
    index: int

    def channels(self, direction: Direction) -> int:
        return self.max_input_channels if direction == "input" else self.max_output_channels


class AudioStream(Protocol):
    """An open stream; its callback runs until `close()` or until the device fails."""

    def is_active(self) -> bool: ...

    @property
    def ended(self) -> bool:
        """True when the stream finished normally (a non-looping file ran out), not by failure."""
        ...

    def close(self) -> None: ...


class AudioBackend(Protocol):
    """The device edge: PortAudio, a WAV file or nothing."""

    name: str

    def devices(self) -> list[DeviceInfo]: ...

    def default_device(self, direction: Direction) -> DeviceInfo | None: ...

    def is_supported(
        self, device: DeviceInfo, direction: Direction, rate_hz: int, channels: int
    ) -> bool: ...

    def open(
        self,
        device: DeviceInfo,
        direction: Direction,
        *,
        rate_hz: int,
        channels: int,
        frames_per_buffer: int,
        callback: StreamCallback,
    ) -> AudioStream: ...

    def close(self) -> None: ...


def find_device(backend: AudioBackend, name: str, direction: Direction) -> DeviceInfo:
    """The device `name` selects: "default", else an exact then a substring match, ignoring case."""
    candidates = [d for d in backend.devices() if d.channels(direction) > 0]
    wanted = name.strip().casefold()
    if wanted in ("", "default"):
        device = backend.default_device(direction)
        if device is not None:
            return device
        if candidates:
            return candidates[0]
    else:
        for device in candidates:
            if device.name.casefold() == wanted:
                return device
        for device in candidates:
            if wanted in device.name.casefold():
                return device
    have = ", ".join(repr(d.name) for d in candidates) or "none"
    raise AudioDeviceError(f"no {direction} device matches {name!r} (available: {have})")


def choose_format(
    backend: AudioBackend,
    device: DeviceInfo,
    direction: Direction,
    wanted_rate_hz: int,
    *,
    rate_hz: int | None = None,
    channels: int | None = None,
) -> tuple[int, int]:
    """(rate_hz, channels) to open: the wanted rate in mono when the device accepts it, else the
    first fallback rate it accepts, mono before stereo. `rate_hz`/`channels` force a format (for
    devices that claim a rate they do not really deliver)."""
    rates = [rate_hz] if rate_hz is not None else [wanted_rate_hz, *FALLBACK_RATES_HZ]
    channel_options = [channels] if channels is not None else [1, 2]
    for rate in dict.fromkeys(rates):
        for ch in channel_options:
            if ch <= device.channels(direction) and backend.is_supported(
                device, direction, rate, ch
            ):
                return rate, ch
    raise AudioDeviceError(
        f"{direction} device {device.name!r} accepts none of the rates {rates} "
        f"with {channel_options} channel(s)"
    )


BACKENDS: Sequence[str] = ("pyaudio", "file", "null")


def open_backend(name: str, **options: Any) -> AudioBackend:
    """A backend by its config name: "pyaudio", "file" or "null" (imported only when chosen)."""
    if name == "pyaudio":
        from pilive.audio.backends.portaudio import PyAudioBackend  # noqa: PLC0415 - lazy by design

        return PyAudioBackend()
    if name == "file":
        from pilive.audio.backends.simulated import FileBackend  # noqa: PLC0415 - lazy by design

        return FileBackend(**options)
    if name == "null":
        from pilive.audio.backends.simulated import NullBackend  # noqa: PLC0415 - lazy by design

        return NullBackend(**options)
    raise ValueError(f"unknown audio backend {name!r}; choose one of {', '.join(BACKENDS)}")
