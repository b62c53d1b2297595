"""Frame sources: where camera frames come from.

A source hands out RGB frames: numpy uint8 arrays of shape (height, width, 3) with channels in
R, G, B order, any size (the streamer crops and scales). Sources are blocking and are only ever
called from the camera's worker thread, never from the event loop.

- `SyntheticSource`: a moving test pattern with a visible clock, for the demo and tests.
- `FileSource`: cycles through the JPEG (`.jpg`, `.jpeg`) and numpy (`.npy`, RGB uint8) files of a
  folder. PNG and other formats are not read (only JPEG is decoded); they are named in a
  warning and skipped.
- `picam.Picamera2Source`: the real camera (see picam.py).
- `none`: no source at all; the streamer then sends no frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pilive.camera.base import CameraError, SourceFactory
from pilive.camera.imaging import DEFAULT_SIZE_PX, Frame, FrameError, check_frame, jpeg_codec

log = logging.getLogger(__name__)

SOURCE_KINDS = ("picamera2", "synthetic", "files", "none")


# 5x7 bitmap glyphs, one string per row, '#' lit. Enough for a clock and a frame counter.
_GLYPH_ROWS: dict[str, tuple[str, ...]] = {
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    ":": ("     ", "  #  ", "  #  ", "     ", "  #  ", "  #  ", "     "),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    "#": (" # # ", "#####", " # # ", " # # ", " # # ", "#####", " # # "),
    " ": ("     ",) * 7,
}
GLYPHS: dict[str, np.ndarray] = {
    char: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    for char, rows in _GLYPH_ROWS.items()
}


def render_text(text: str, scale: int) -> np.ndarray:
    """A bool mask (7*scale, 6*len*scale) of `text` in the 5x7 font, one blank column per glyph."""
    unknown = sorted(set(text) - GLYPHS.keys())
    if unknown:
        raise ValueError(f"no glyph for {unknown!r} in the 5x7 font")
    gap = np.zeros((7, 1), dtype=bool)
    row = np.hstack([np.hstack((GLYPHS[c], gap)) for c in text]) if text else np.zeros((7, 0), bool)
    return np.repeat(np.repeat(row, scale, axis=0), scale, axis=1)


class SyntheticSource:
    """A scrolling colour gradient, a bouncing square and a clock: visibly alive, cheap to make.

    The gradient is computed once; each frame is one `np.roll` plus two small fills, about a
    millisecond at 768x768. `clock` (wall-clock seconds) is drawn as HH:MM:SS.t, beside a frame
    counter, so a viewer can tell fresh frames from stale ones.
    """

    name = "synthetic"

    def __init__(
        self,
        width_px: int = DEFAULT_SIZE_PX,
        height_px: int = DEFAULT_SIZE_PX,
        *,
        clock: Callable[[], float] = time.time,
        speed_px: int = 24,
    ) -> None:
        if width_px < 64 or height_px < 64:
            raise ValueError(f"synthetic frames must be at least 64x64, got {width_px}x{height_px}")
        self.width_px = width_px
        self.height_px = height_px
        self._clock = clock
        self._speed_px = speed_px
        self._base: np.ndarray | None = None
        self.frames_made = 0

    def start(self) -> None:
        x = np.linspace(0.0, 2.0 * np.pi, self.width_px, endpoint=False, dtype=np.float32)
        y = np.linspace(0.0, 1.0, self.height_px, dtype=np.float32)[:, np.newaxis]
        red = 127.5 + 127.5 * np.sin(x)
        green = 127.5 + 127.5 * np.sin(x + 2.0944)
        blue = np.broadcast_to(255.0 * y, (self.height_px, self.width_px))
        base = np.empty((self.height_px, self.width_px, 3), dtype=np.uint8)
        base[:, :, 0] = red * (0.35 + 0.65 * y)
        base[:, :, 1] = green * (1.0 - 0.65 * y)
        base[:, :, 2] = blue
        self._base = base

    def capture_array(self) -> Frame:
        if self._base is None:
            raise CameraError("synthetic source used before start()")
        n = self.frames_made
        self.frames_made += 1
        frame: Frame = np.roll(self._base, n * self._speed_px, axis=1)
        height, width = self.height_px, self.width_px
        # A white square bouncing along the diagonal.
        side = max(8, min(height, width) // 8)
        span_x, span_y = width - side, height - side
        pos = (n * self._speed_px) % (2 * span_x) if span_x else 0
        left = pos if pos <= span_x else 2 * span_x - pos
        top = span_y * left // span_x if span_x else 0
        frame[top : top + side, left : left + side] = 255
        self._draw_label(frame)
        return frame

    def _draw_label(self, frame: Frame) -> None:
        now = self._clock()
        tm = time.localtime(now)
        tenths = int((now % 1.0) * 10)
        label = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{tenths} #{self.frames_made}"
        scale = max(1, min(frame.shape[0], frame.shape[1]) // 128)
        mask = render_text(label, scale)
        margin = 2 * scale
        rows = min(mask.shape[0], frame.shape[0] - 2 * margin)
        cols = min(mask.shape[1], frame.shape[1] - 2 * margin)
        box = frame[: rows + 2 * margin, : cols + 2 * margin]
        box[...] = 0
        box[margin : margin + rows, margin : margin + cols][mask[:rows, :cols]] = 255

    def close(self) -> None:
        self._base = None


JPEG_SUFFIXES = (".jpg", ".jpeg")
NUMPY_SUFFIXES = (".npy",)


class FileSource:
    """Cycles through a folder's JPEG and .npy files in name order, one per capture.

    JPEGs are decoded to RGB (simplejpeg, or Pillow), using DCT scaling to skip detail above the
    target size (min_height/min_width = size_px), so a 12 MP photo costs little. A file that
    cannot be read is named in a warning once and skipped; only a folder with nothing readable
    is an error.
    """

    name = "files"

    def __init__(self, folder: str | Path, *, size_px: int = DEFAULT_SIZE_PX) -> None:
        self.folder = Path(folder)
        self.size_px = size_px
        self._paths: list[Path] = []
        self._bad: set[Path] = set()
        self._next = 0

    def start(self) -> None:
        if not self.folder.is_dir():
            raise CameraError(f"camera image folder {str(self.folder)!r} is not a directory")
        paths: list[Path] = []
        ignored: list[str] = []
        for path in sorted(self.folder.iterdir()):
            if not path.is_file():
                continue
            if path.suffix.lower() in JPEG_SUFFIXES + NUMPY_SUFFIXES:
                paths.append(path)
            else:
                ignored.append(path.name)
        if ignored:
            log.warning(
                "camera image folder %s: ignoring %d file(s) that are not JPEG or .npy: %s",
                self.folder,
                len(ignored),
                ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else ""),
            )
        if not paths:
            raise CameraError(
                f"camera image folder {str(self.folder)!r} has no .jpg, .jpeg or .npy files"
            )
        self._paths = paths
        self._next = 0

    def capture_array(self) -> Frame:
        if not self._paths:
            raise CameraError("file source used before start()")
        for _ in range(len(self._paths)):
            path = self._paths[self._next]
            self._next = (self._next + 1) % len(self._paths)
            if path in self._bad:
                continue
            try:
                return self._read(path)
            except (OSError, ValueError) as exc:
                self._bad.add(path)
                log.warning("camera image %s cannot be read, skipping it: %s", path, exc)
        raise CameraError(f"none of the images in {str(self.folder)!r} can be read")

    def _read(self, path: Path) -> Frame:
        if path.suffix.lower() in NUMPY_SUFFIXES:
            array = np.load(path, allow_pickle=False)
            try:
                return check_frame(array)
            except FrameError as exc:
                raise ValueError(f"{path.name}: {exc}") from None
        data = path.read_bytes()
        codec = jpeg_codec()
        if not codec.is_jpeg(data):
            raise ValueError(f"{path.name} is not a JPEG file")
        return codec.decode(data, self.size_px)

    def close(self) -> None:
        self._paths = []


def make_source_factory(
    kind: str,
    *,
    size_px: int = DEFAULT_SIZE_PX,
    folder: str | Path | None = None,
    camera_num: int = 0,
    capture_timeout_s: float = 2.0,
) -> SourceFactory | None:
    """A factory for the configured source kind, or None for "none" (no camera at all).

    A factory rather than a source so the streamer can build a fresh one after a failure.
    """
    if kind == "synthetic":
        return lambda: SyntheticSource(size_px, size_px)
    if kind == "files":
        if folder is None:
            raise ValueError('camera source "files" needs a folder of images')
        chosen = Path(folder)
        return lambda: FileSource(chosen, size_px=size_px)
    if kind == "picamera2":
        from pilive.camera.picam import Picamera2Source  # noqa: PLC0415 (picamera2 only when used)

        return lambda: Picamera2Source(
            size_px, camera_num=camera_num, capture_timeout_s=capture_timeout_s
        )
    if kind == "none":
        return None
    raise ValueError(f"camera source must be one of {', '.join(SOURCE_KINDS)}; got {kind!r}")
