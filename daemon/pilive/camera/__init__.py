"""The camera: sources -> 768x768 JPEG frames at up to 1 frame/s, never stalling the conversation.

Pieces:
- `sources`: frame sources (synthetic, image folder, none) and the `FrameSource` interface.
- `picam`: the picamera2 adapter, the only module that imports picamera2 (lazily).
- `imaging`: the Frame type; centre-crop to a square, area-scale, JPEG-encode (Pillow; simplejpeg
  for frames that need neither while numpy is loaded anyway, as with picamera2).
- `schedule`: the pure, drift-free frame schedule and the retry backoff.
- `streamer`: the asyncio task that runs it all on a worker thread and sends frames.

Frames travel as `realtimeInput.video` ({"mimeType": "image/jpeg", "data": base64}), built by the
Live API wire module from the bytes `CameraStreamer` hands to `on_frame`. How much detail the
model takes from each frame is the setup's `generationConfig.mediaResolution`
(MEDIA_RESOLUTION_LOW: 64 tokens per frame, MEDIUM: 256, HIGH), configured with the session, not
here: the camera always sends the same 768x768 JPEG.

Channel order is R, G, B at every edge in this package (frames may carry a fourth byte that is
not used, RGBX, as the synthetic source does); picamera2 is asked for its `BGR888` format,
which is R, G, B in memory.
"""

from __future__ import annotations

from pilive.camera.base import CameraError, FrameSource, SourceFactory
from pilive.camera.imaging import DEFAULT_JPEG_QUALITY, DEFAULT_SIZE_PX
from pilive.camera.schedule import FrameSchedule
from pilive.camera.sources import (
    SOURCE_KINDS,
    FileSource,
    SyntheticSource,
    make_source_factory,
)
from pilive.camera.streamer import CameraMode, CameraState, CameraStreamer

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_SIZE_PX",
    "SOURCE_KINDS",
    "CameraError",
    "CameraMode",
    "CameraState",
    "CameraStreamer",
    "FileSource",
    "FrameSchedule",
    "FrameSource",
    "SourceFactory",
    "SyntheticSource",
    "make_source_factory",
]
