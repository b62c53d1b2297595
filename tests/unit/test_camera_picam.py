"""The picamera2 adapter, checked call by call against a recording stand-in."""

from __future__ import annotations

import numpy as np
import pytest

from pilive.camera.base import CameraError
from pilive.camera.picam import Picamera2Source
from tests.support.camera_rig import RecordingPicamera2, as_array, solid_array


def make(
    configure_error: BaseException | None = None, **kwargs: object
) -> tuple[Picamera2Source, list[RecordingPicamera2]]:
    built: list[RecordingPicamera2] = []

    def factory(camera_num: int) -> RecordingPicamera2:
        built.append(RecordingPicamera2(camera_num))
        built[-1].configure_error = configure_error
        return built[-1]

    return Picamera2Source(768, factory=factory, **kwargs), built  # type: ignore[arg-type]


def test_start_capture_close_follow_the_picamera2_recipe() -> None:
    """Video configuration with a 768x768 BGR888 (R,G,B in memory) main stream, 3 buffers and
    a fixed 100 ms frame duration; configure, start; each capture is a timed, flushed
    captured_request whose request is released; close stops then closes. The frame wraps the
    camera's array without copying it."""
    source, built = make(camera_num=1, capture_timeout_s=1.5)
    source.start()
    frame = source.capture_array()
    source.close()
    camera = built[0]
    assert camera.calls == [
        ("Picamera2", (1,), {}),
        (
            "create_video_configuration",
            (),
            {
                "main": {"size": (768, 768), "format": "BGR888"},
                "buffer_count": 3,
                "controls": {"FrameDurationLimits": (100_000, 100_000)},
            },
        ),
        ("configure", ({"recorded-config": camera.calls[1][2]},), {}),
        ("start", (), {}),
        ("captured_request", (), {"wait": 1.5, "flush": True}),
        ("make_array", ("main",), {}),
        ("release", (), {}),
        ("stop", (), {}),
        ("close", (), {}),
    ]
    assert (frame.width_px, frame.height_px) == (768, 768)
    assert np.array_equal(as_array(frame), solid_array((0, 0, 255), 768, 768))
    # The camera's array is wrapped, not copied: the frame reads the very same memory.
    assert np.shares_memory(as_array(frame), camera.array)
    source.close()  # a second close does nothing
    assert camera.names().count("close") == 1


def test_a_camera_timeout_becomes_a_camera_error() -> None:
    """picamera2's wait timeout (TimeoutError) is reported as a CameraError naming the wait."""
    source, built = make(capture_timeout_s=0.5)
    source.start()
    built[0].capture_error = TimeoutError("Job timed out")
    with pytest.raises(CameraError, match=r"no frame within 0\.5 s"):
        source.capture_array()


def test_a_failed_start_releases_the_camera() -> None:
    """If configure or start fails, the camera is stopped and closed and the error says so."""
    source, built = make(configure_error=RuntimeError("Failed to configure camera"))
    with pytest.raises(CameraError, match="did not start: Failed to configure"):
        source.start()
    assert built[0].names()[-2:] == ["stop", "close"]


def test_a_wrong_array_from_the_camera_is_refused() -> None:
    """A frame of the wrong layout (e.g. a 4-channel XRGB8888 array) is a clear error."""
    source, built = make()
    source.start()
    built[0].array = np.zeros((768, 768, 4), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        source.capture_array()


def test_use_before_start_and_bad_timeout_are_named() -> None:
    """Capturing before start, or a non-positive timeout, is refused by name."""
    source, _ = make()
    with pytest.raises(CameraError, match="before start"):
        source.capture_array()
    with pytest.raises(ValueError, match="capture_timeout_s"):
        make(capture_timeout_s=0)
