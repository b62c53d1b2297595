"""Camera test rig: sources with controllable faults, and a recording stand-in for Picamera2.

picamera2 cannot be imported on the build machines, so `RecordingPicamera2` offers the same
method names the adapter uses and records every call with its arguments; tests check the
sequence against what the picamera2 manual prescribes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from pilive.camera.base import CameraError
from pilive.camera.imaging import Frame

Array = npt.NDArray[np.uint8]


def solid(rgb: tuple[int, int, int], height: int = 64, width: int = 64) -> Frame:
    """A frame of one colour, channels R, G, B."""
    return Frame(width, height, bytes(rgb) * (width * height))


def as_array(frame: Frame) -> Array:
    """The frame's R, G, B as a (height, width, 3) numpy array over the same bytes (for checks
    in tests; an RGBX frame's fourth byte is left out of the view)."""
    array = np.frombuffer(frame.data, dtype=np.uint8)
    return array.reshape(frame.height_px, frame.width_px, frame.channels)[:, :, :3]


def as_rgbx(frame: Frame) -> Frame:
    """The same picture as an RGBX frame (a fourth byte of 0 after each pixel)."""
    rgbx = np.zeros((frame.height_px, frame.width_px, 4), np.uint8)
    rgbx[:, :, :3] = as_array(frame)
    return Frame(frame.width_px, frame.height_px, rgbx.tobytes(), 4)


def solid_array(rgb: tuple[int, int, int], height: int = 64, width: int = 64) -> Array:
    """A numpy array of one colour, as picamera2 or a decoder hands out."""
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[...] = rgb
    return array


class ScriptedSource:
    """A real FrameSource whose behaviour tests change while it runs.

    `fail_captures` > 0 makes that many captures raise; `fail_starts` likewise for start();
    `delay_s` sleeps in every capture (a slow camera); `hang` blocks captures until released.
    Everything is counted so tests can see what happened on the worker thread.
    """

    name = "scripted"

    def __init__(self, frame: Frame | None = None) -> None:
        self.frame = solid((200, 30, 30)) if frame is None else frame
        self.fail_starts = 0
        self.fail_captures = 0
        self.delay_s = 0.0
        self.hang = threading.Event()  # set => captures block until `release` is set
        self.release = threading.Event()
        self.starts = 0
        self.captures = 0
        self.closes = 0
        self.capture_threads: set[int] = set()
        self.capture_starts: list[float] = []
        """time.monotonic() as each capture began, in order."""
        self.capture_spans: list[tuple[float, float]] = []
        """(began, returned or raised) of each finished capture, in the order they finished."""
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.starts += 1
            if self.fail_starts > 0:
                self.fail_starts -= 1
                raise CameraError("scripted start failure")

    def capture_array(self) -> Frame:
        self.capture_threads.add(threading.get_ident())
        started_s = time.monotonic()
        with self._lock:
            self.capture_starts.append(started_s)
        try:
            if self.hang.is_set():
                self.release.wait()
            if self.delay_s:
                time.sleep(self.delay_s)
            with self._lock:
                self.captures += 1
                if self.fail_captures > 0:
                    self.fail_captures -= 1
                    raise CameraError("scripted capture failure")
            return self.frame  # immutable: safe to hand out again
        finally:
            self.capture_spans.append((started_s, time.monotonic()))

    def close(self) -> None:
        with self._lock:
            self.closes += 1


class RecordingRequest:
    def __init__(self, camera: RecordingPicamera2) -> None:
        self._camera = camera

    def make_array(self, name: str) -> Any:
        self._camera.calls.append(("make_array", (name,), {}))
        return self._camera.array


class RecordingPicamera2:
    """Stands in for picamera2.Picamera2: records (method, args, kwargs) for every call."""

    def __init__(self, camera_num: int, array: Array | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
            ("Picamera2", (camera_num,), {})
        ]
        self.array = solid_array((0, 0, 255), 768, 768) if array is None else array
        self.capture_error: BaseException | None = None
        self.configure_error: BaseException | None = None
        self.released = 0

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_video_configuration", (), kwargs))
        return {"recorded-config": kwargs}

    def configure(self, config: Any) -> None:
        self.calls.append(("configure", (config,), {}))
        if self.configure_error is not None:
            raise self.configure_error

    def start(self) -> None:
        self.calls.append(("start", (), {}))

    @contextlib.contextmanager
    def captured_request(self, **kwargs: Any) -> Iterator[RecordingRequest]:
        self.calls.append(("captured_request", (), kwargs))
        if self.capture_error is not None:
            raise self.capture_error
        try:
            yield RecordingRequest(self)
        finally:
            self.released += 1
            self.calls.append(("release", (), {}))

    def stop(self) -> None:
        self.calls.append(("stop", (), {}))

    def close(self) -> None:
        self.calls.append(("close", (), {}))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]
