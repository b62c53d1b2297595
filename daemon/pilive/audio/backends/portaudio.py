"""Real devices through PortAudio (PyAudio), with PortAudio's start-up probe noise kept quiet."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from pilive.audio.backends import (
    AudioDeviceError,
    AudioStream,
    DeviceInfo,
    Direction,
    StreamCallback,
)

log = logging.getLogger(__name__)

# --- PortAudio through PyAudio --------------------------------------------------------------

_ALSA_HANDLER_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)


def _alsa_error(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
    log.debug("alsa: %s:%d %s (%d)", file.decode(errors="replace"), line, fmt, err)


# Kept referenced for the life of the process: libasound calls it after PyAudio() returns.
_alsa_handler = _ALSA_HANDLER_TYPE(_alsa_error)
_alsa_state = {"installed": False}


def _install_alsa_error_handler() -> None:
    """Route libasound's probe errors ("Unknown PCM dmix"...) to debug logging instead of stderr."""
    if _alsa_state["installed"]:
        return
    name = ctypes.util.find_library("asound")
    if name is None:
        return
    try:
        ctypes.CDLL(name).snd_lib_error_set_handler(_alsa_handler)
    except (OSError, AttributeError) as exc:
        log.debug("cannot install the ALSA error handler: %s", exc)
        return
    _alsa_state["installed"] = True


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null: the JACK client library prints its probe failures there directly."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _PyAudioStream:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def is_active(self) -> bool:
        try:
            return bool(self._stream.is_active())
        except OSError:
            return False

    @property
    def ended(self) -> bool:
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()


class PyAudioBackend:
    """Real devices through PortAudio. PortAudio reads the ALSA configuration once, when it is
    initialised, so this backend is created after the sound system is up."""

    name = "pyaudio"

    def __init__(self) -> None:
        import pyaudio  # noqa: PLC0415 - the hardware binding loads only when real audio is wanted

        self._pyaudio = pyaudio
        _install_alsa_error_handler()
        with _stderr_silenced():
            self._pa = pyaudio.PyAudio()
        self._lock = threading.Lock()

    def devices(self) -> list[DeviceInfo]:
        found = []
        for index in range(self._pa.get_device_count()):
            info = self._pa.get_device_info_by_index(index)
            found.append(
                DeviceInfo(
                    name=str(info["name"]),
                    max_input_channels=int(info["maxInputChannels"]),
                    max_output_channels=int(info["maxOutputChannels"]),
                    default_rate_hz=int(info["defaultSampleRate"]),
                    index=index,
                )
            )
        return found

    def default_device(self, direction: Direction) -> DeviceInfo | None:
        try:
            if direction == "input":
                index = int(self._pa.get_default_input_device_info()["index"])
            else:
                index = int(self._pa.get_default_output_device_info()["index"])
        except OSError:
            return None
        return next((d for d in self.devices() if d.index == index), None)

    def is_supported(
        self, device: DeviceInfo, direction: Direction, rate_hz: int, channels: int
    ) -> bool:
        fmt = self._pyaudio.paInt16
        try:
            if direction == "input":
                return bool(
                    self._pa.is_format_supported(
                        rate_hz,
                        input_device=device.index,
                        input_channels=channels,
                        input_format=fmt,
                    )
                )
            return bool(
                self._pa.is_format_supported(
                    rate_hz,
                    output_device=device.index,
                    output_channels=channels,
                    output_format=fmt,
                )
            )
        except ValueError:
            return False

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
        kwargs: dict[str, Any] = {
            "rate": rate_hz,
            "channels": channels,
            "format": self._pyaudio.paInt16,
            "frames_per_buffer": frames_per_buffer,
            "stream_callback": callback,
        }
        if direction == "input":
            kwargs.update(input=True, input_device_index=device.index)
        else:
            kwargs.update(output=True, output_device_index=device.index)
        try:
            # PortAudio's stream list is not thread-safe; capture and playback may reopen at once.
            with self._lock:
                stream = self._pa.open(**kwargs)
        except (OSError, ValueError) as exc:
            raise AudioDeviceError(
                f"cannot open {direction} device {device.name!r} at {rate_hz} Hz, "
                f"{channels} ch: {exc}"
            ) from exc
        return _PyAudioStream(stream)

    def close(self) -> None:
        self._pa.terminate()
