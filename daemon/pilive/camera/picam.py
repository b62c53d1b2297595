"""The Raspberry Pi camera through picamera2: the only module that touches picamera2.

picamera2 is imported lazily (in `start`) so the package imports on any machine. Facts this
adapter relies on, from the picamera2 manual and source:
- `create_video_configuration(main={"size": ..., "format": ...}, buffer_count=..., controls=...)`
  then `configure(config)` and `start()`. A square main stream makes libcamera pick a centred
  square crop of the sensor, so the field of view is not stretched.
- Formats are DRM fourcc names, which read backwards in memory: `RGB888` arrays are B, G, R and
  `BGR888` arrays are R, G, B. We ask for `BGR888` so frames are RGB with no per-frame swap.
- `FrameDurationLimits` is (min, max) in microseconds; fixing it at 100 ms (10 fps) keeps the
  sensor and ISP cheap while leaving a fresh frame at most ~100 ms away.
- `captured_request(wait=seconds, flush=True)` is a context manager that releases the request;
  a numeric `wait` makes a hung camera raise a timeout instead of blocking forever, and `flush`
  skips frames exposed before the call, so the frame at a button press is fresh.
- `request.make_array("main")` copies the buffer into a (height, width, 3) numpy array, which
  the Frame wraps through the buffer protocol without another copy (picamera2 loads numpy
  itself; nothing here does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pilive.camera.base import CameraError
from pilive.camera.imaging import DEFAULT_SIZE_PX, Frame, frame_from_array

# picamera2's DRM fourcc for arrays in R, G, B byte order (see the module docstring).
PIXEL_FORMAT = "BGR888"
BUFFER_COUNT = 3
FRAME_DURATION_US = 100_000


def _default_factory(camera_num: int) -> Any:
    try:
        from picamera2 import Picamera2  # noqa: PLC0415 (only on a Pi, only when used)
    except ImportError as exc:
        raise CameraError(
            "picamera2 is not installed (on Raspberry Pi OS: apt install python3-picamera2, "
            "with a venv made using --system-site-packages)"
        ) from exc
    return Picamera2(camera_num)


class Picamera2Source:
    """A `FrameSource` over picamera2. `factory(camera_num)` builds the Picamera2 object.

    The factory is a parameter so tests can hand in a recording fake with the same methods.
    """

    name = "picamera2"

    def __init__(
        self,
        size_px: int = DEFAULT_SIZE_PX,
        *,
        camera_num: int = 0,
        capture_timeout_s: float = 2.0,
        frame_duration_us: int = FRAME_DURATION_US,
        factory: Callable[[int], Any] = _default_factory,
    ) -> None:
        if capture_timeout_s <= 0:
            raise ValueError(f"capture_timeout_s must be positive, got {capture_timeout_s!r}")
        self.size_px = size_px
        self.camera_num = camera_num
        self.capture_timeout_s = capture_timeout_s
        self.frame_duration_us = frame_duration_us
        self._factory = factory
        self._camera: Any = None

    def start(self) -> None:
        camera = self._factory(self.camera_num)
        self._camera = camera
        try:
            config = camera.create_video_configuration(
                main={"size": (self.size_px, self.size_px), "format": PIXEL_FORMAT},
                buffer_count=BUFFER_COUNT,
                controls={"FrameDurationLimits": (self.frame_duration_us, self.frame_duration_us)},
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:
            self.close()
            raise CameraError(f"camera {self.camera_num} did not start: {exc}") from exc

    def capture_array(self) -> Frame:
        camera = self._camera
        if camera is None:
            raise CameraError("picamera2 source used before start()")
        try:
            with camera.captured_request(wait=self.capture_timeout_s, flush=True) as request:
                array = request.make_array("main")
        except TimeoutError as exc:
            raise CameraError(
                f"camera {self.camera_num} gave no frame within {self.capture_timeout_s:g} s"
            ) from exc
        return frame_from_array(array)

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            camera.stop()
        finally:
            camera.close()
