"""Frame sources: where camera frames come from.

A source hands out `Frame`s: packed RGB bytes (R, G, B per pixel) with their width and height,
any size (the streamer crops and scales). Sources are blocking and are only ever called from the
camera's worker thread, never from the event loop. Neither source in this module needs numpy:
a daemon whose camera is the synthetic pattern or a folder of JPEGs does not load it (about
15 MB).

- `SyntheticSource`: a moving test pattern with a visible clock, for the demo and tests.
- `FileSource`: cycles through the JPEG (`.jpg`, `.jpeg`) and numpy (`.npy`, RGB uint8) files of a
  folder. PNG and other formats are not read (only JPEG is decoded); they are named in a
  warning and skipped. A `.npy` file loads numpy to read it.
- `picam.Picamera2Source`: the real camera (see picam.py).
- `none`: no source at all; the streamer then sends no frames.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from pilive.camera.base import CameraError, SourceFactory
from pilive.camera.imaging import (
    DEFAULT_SIZE_PX,
    RGBX_CHANNELS,
    Frame,
    FrameError,
    frame_from_array,
    jpeg_codec,
)

log = logging.getLogger(__name__)

SOURCE_KINDS = ("picamera2", "synthetic", "files", "none")


# 5x7 bitmap glyphs, one string per row, '#' lit. Enough for a clock and a frame counter.
GLYPHS: dict[str, tuple[str, ...]] = {
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
GLYPH_ROWS = 7

# The synthetic source's pixels: R, G, B and a byte not used (RGBX), which Pillow takes as it is.
PIXEL_BYTES = RGBX_CHANNELS
WHITE = b"\xff" * PIXEL_BYTES
BLACK = b"\x00" * PIXEL_BYTES


def render_text(text: str, scale: int, lit: bytes = b"\xff", unlit: bytes = b"\x00") -> list[bytes]:
    """The rows (7*scale of them) of `text` in the 5x7 font, one blank column after each glyph,
    every pixel `scale` wide as `lit` or `unlit` bytes: with WHITE and BLACK, rows of RGBX."""
    unknown = sorted(set(text) - GLYPHS.keys())
    if unknown:
        raise ValueError(f"no glyph for {unknown!r} in the 5x7 font")
    on, off = lit * scale, unlit * scale
    rows: list[bytes] = []
    for r in range(GLYPH_ROWS):
        row = b"".join(on if dot == "#" else off for char in text for dot in GLYPHS[char][r] + " ")
        rows += [row] * scale
    return rows


class SyntheticSource:
    """A scrolling colour gradient, a bouncing square and a clock: visibly alive, cheap to make.

    Plain bytes, no numpy, RGBX pixels (Pillow maps those without a copy, so a frame in flight
    is one buffer, not two). The gradient's rows are computed once (one per step of its 256
    vertical levels); each frame joins every row rotated by the scroll offset (two slices a row)
    and rewrites only the rows the square and the label cross, about a millisecond at 768x768.
    `clock` (wall-clock seconds) is drawn as HH:MM:SS.t, beside a frame counter, so a viewer can
    tell fresh frames from stale ones.
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
        self._gradient: list[bytes] | None = None  # one row per vertical step
        self.frames_made = 0

    def start(self) -> None:
        width, steps = self.width_px, min(self.height_px, 256)
        angles = [2.0 * math.pi * x / width for x in range(width)]
        red = [127.5 + 127.5 * math.sin(a) for a in angles]
        green = [127.5 + 127.5 * math.sin(a + 2.0944) for a in angles]
        rows = []
        for step in range(steps):
            y = step / (steps - 1)
            row = bytearray(width * PIXEL_BYTES)  # the unused fourth byte stays 0
            row[0::PIXEL_BYTES] = bytes(int(r * (0.35 + 0.65 * y)) for r in red)
            row[1::PIXEL_BYTES] = bytes(int(g * (1.0 - 0.65 * y)) for g in green)
            row[2::PIXEL_BYTES] = bytes((int(255.0 * y),)) * width
            rows.append(bytes(row))
        self._gradient = rows

    def capture_array(self) -> Frame:
        if self._gradient is None:
            raise CameraError("synthetic source used before start()")
        n = self.frames_made
        self.frames_made += 1
        height, width = self.height_px, self.width_px
        # Each gradient row rotated right by the scroll offset (as np.roll along x would).
        offset_px = (n * self._speed_px) % width
        cut = (width - offset_px) * PIXEL_BYTES
        steps = len(self._gradient)
        rolled = [memoryview(row) for row in self._gradient]
        rows: list[bytes | bytearray | memoryview] = []
        for y in range(height):
            row = rolled[y * steps // height]
            rows += (row[cut:], row[:cut])
        changed: dict[int, bytearray] = {}

        def editable(y: int) -> bytearray:
            if y not in changed:
                changed[y] = bytearray(rows[2 * y]) + rows[2 * y + 1]
                rows[2 * y], rows[2 * y + 1] = changed[y], b""
            return changed[y]

        # A white square bouncing along the diagonal.
        side = max(8, min(height, width) // 8)
        span_x, span_y = width - side, height - side
        pos = (n * self._speed_px) % (2 * span_x) if span_x else 0
        left = pos if pos <= span_x else 2 * span_x - pos
        top = span_y * left // span_x if span_x else 0
        for y in range(top, top + side):
            editable(y)[left * PIXEL_BYTES : (left + side) * PIXEL_BYTES] = WHITE * side
        self._draw_label(editable)
        return Frame(width, height, b"".join(rows), PIXEL_BYTES)

    def _draw_label(self, editable: Callable[[int], bytearray]) -> None:
        now = self._clock()
        tm = time.localtime(now)
        tenths = int((now % 1.0) * 10)
        label = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{tenths} #{self.frames_made}"
        scale = max(1, min(self.width_px, self.height_px) // 128)
        text = render_text(label, scale, WHITE, BLACK)
        margin = 2 * scale
        rows = min(len(text), self.height_px - 2 * margin)
        cols = min(len(text[0]) // PIXEL_BYTES, self.width_px - 2 * margin)
        for y in range(rows + 2 * margin):
            row = editable(y)
            row[: (cols + 2 * margin) * PIXEL_BYTES] = BLACK * (cols + 2 * margin)
            if margin <= y < margin + rows:
                row[margin * PIXEL_BYTES : (margin + cols) * PIXEL_BYTES] = text[y - margin][
                    : cols * PIXEL_BYTES
                ]

    def close(self) -> None:
        self._gradient = None


JPEG_SUFFIXES = (".jpg", ".jpeg")
NUMPY_SUFFIXES = (".npy",)


class FileSource:
    """Cycles through a folder's JPEG and .npy files in name order, one per capture.

    JPEGs are decoded to RGB by Pillow, using DCT scaling to skip detail above the
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
            import numpy  # noqa: PLC0415  # only a folder of .npy files needs it

            try:
                return frame_from_array(numpy.load(path, allow_pickle=False))
            except FrameError as exc:
                raise ValueError(f"{path.name}: {exc}") from None
        data = path.read_bytes()
        codec = jpeg_codec("pillow")
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
