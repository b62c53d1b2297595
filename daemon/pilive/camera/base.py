"""What every camera source is to the streamer: the FrameSource protocol and its one error.

Its own module so the sources (sources.py) and the Pi camera (picam.py) both depend on it and
not on each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pilive.camera.imaging import Frame


class CameraError(RuntimeError):
    """The camera (or stand-in) could not start or deliver a frame; retried with backoff."""


class FrameSource(Protocol):
    """What the streamer needs from a camera. All calls block; all run on the worker thread."""

    name: str

    def start(self) -> None:
        """Open the device; raise CameraError (or any error) when it cannot be used."""

    def capture_array(self) -> Frame:
        """One fresh RGB frame (R, G, B order), any size."""
        ...

    def close(self) -> None:
        """Release the device; safe to call more than once and after a failed start."""


SourceFactory = Callable[[], FrameSource]
