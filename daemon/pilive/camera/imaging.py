"""Frames to square JPEGs: centre-crop, area-scale with numpy, encode with simplejpeg (or Pillow).

Every array here is RGB: uint8, shape (height, width, 3), channels in R, G, B order. The Live API
wants discrete JPEG frames, best at 768x768; anything else is centre-cropped to a square (never
stretched) and scaled.

Scaling method (cheap enough to run on a Pi at 1 frame/s, a few ms on a desktop core):
- downscaling is a box (area) filter with integer bin edges: output pixel i averages the input
  pixels floor(i*s/n) .. floor((i+1)*s/n) - 1, done per axis with `np.add.reduceat`. Every input
  pixel lands in exactly one bin, so nothing is skipped and there is no aliasing from dropped rows;
  the bin widths differ by at most one pixel, which is invisible at these ratios.
- upscaling (a source smaller than the target) replicates pixels (nearest neighbour): there is no
  detail to invent, and a model reads blocky edges better than blurred ones.

JPEG codec: simplejpeg (what picamera2 itself uses; wheels for x86-64 and arm64, and
python3-simplejpeg on Raspberry Pi OS). Where it is missing (32-bit Debian: no armv7 wheel, and
its source build downloads libjpeg-turbo), Pillow from Debian's python3-pil, also libjpeg-turbo
underneath, encodes and decodes the same way. Chosen on first use, not at import.
"""

from __future__ import annotations

import functools
import io
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]

DEFAULT_SIZE_PX = 768
DEFAULT_JPEG_QUALITY = 80


class FrameError(ValueError):
    """A frame has the wrong shape or type; the message names what was wrong."""


def check_frame(frame: object) -> Frame:
    """Return `frame` if it is an RGB uint8 (height, width, 3) array, else raise FrameError."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame must have dtype uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"frame must have shape (height, width, 3), got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame is empty: shape {frame.shape}")
    return frame


def centre_square(frame: Frame) -> Frame:
    """The largest centred square of `frame`, as a view (no copy)."""
    height, width = frame.shape[0], frame.shape[1]
    side = min(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    return frame[top : top + side, left : left + side]


class _AreaPlan:
    """Precomputed bins for an area downscale side_in -> side_out (cached per size pair)."""

    def __init__(self, side_in: int, side_out: int) -> None:
        starts = (np.arange(side_out, dtype=np.intp) * side_in) // side_out
        widths = np.diff(np.append(starts, side_in))
        self.starts = starts
        # For each extra row offset t >= 1: the bins that are wider than t, and their row t.
        self.extra_rows = [
            (np.flatnonzero(widths > t), starts[widths > t] + t)
            for t in range(1, int(widths.max()))
        ]
        area = np.outer(widths, widths).astype(np.float32)
        self.inverse_area = (1.0 / area)[:, :, np.newaxis]
        # uint16 sums are faster; they hold a bin of up to 257 pixels of 255 without overflow.
        big = int(widths.max()) ** 2 * 255 > np.iinfo(np.uint16).max
        self.sum_type: type[np.unsignedinteger[Any]] = np.uint32 if big else np.uint16


@functools.lru_cache(maxsize=16)
def _area_plan(side_in: int, side_out: int) -> _AreaPlan:
    return _AreaPlan(side_in, side_out)


@functools.lru_cache(maxsize=16)
def _replicate_index(side_in: int, side_out: int) -> npt.NDArray[np.intp]:
    """Source index of each output pixel for a nearest-neighbour upscale (centre-aligned)."""
    centres = (np.arange(side_out, dtype=np.float64) + 0.5) * side_in / side_out
    return np.minimum(centres.astype(np.intp), side_in - 1)


def scale_square(square: Frame, size_px: int) -> Frame:
    """Scale a square RGB frame to size_px x size_px; returns a new C-contiguous array."""
    side = square.shape[0]
    if square.shape[1] != side:
        raise FrameError(f"scale_square needs a square frame, got {square.shape}")
    if side == size_px:
        return np.ascontiguousarray(square)
    if side < size_px:
        index = _replicate_index(side, size_px)
        return np.ascontiguousarray(square[index][:, index])
    plan = _area_plan(side, size_px)
    # Rows: gather the first row of every bin, then add the bins' further rows (whole-row copies
    # are the fast direction in numpy). Columns: np.add.reduceat over the bin starts.
    rows = square[plan.starts].astype(plan.sum_type)
    for bins, source_rows in plan.extra_rows:
        rows[bins] += square[source_rows]
    sums = np.add.reduceat(rows, plan.starts, axis=1)
    means = sums * plan.inverse_area
    np.add(means, 0.5, out=means)  # round to nearest rather than truncate
    out: Frame = np.empty((size_px, size_px, 3), dtype=np.uint8)
    out[...] = means  # float32 -> uint8; values are within 0.5..255.5, so truncation rounds
    return out


def to_square(frame: Frame, size_px: int = DEFAULT_SIZE_PX) -> Frame:
    """Centre-crop any RGB frame to a square and scale it to size_px; never stretches."""
    if size_px <= 0:
        raise FrameError(f"size_px must be positive, got {size_px}")
    return scale_square(centre_square(check_frame(frame)), size_px)


class JpegCodec(Protocol):
    """What pilive needs from a JPEG library (RGB arrays in, bytes out, and back)."""

    name: str

    def encode(self, frame: Frame, quality: int) -> bytes:
        """Baseline JPEG with 4:2:0 chroma at `quality` (1..100)."""
        ...

    def decode(self, data: bytes, min_side_px: int) -> Frame:
        """RGB frame, reduced by DCT scaling while both sides stay >= min_side_px."""
        ...

    def is_jpeg(self, data: bytes) -> bool: ...


class _SimpleJpeg:
    name = "simplejpeg"

    def __init__(self) -> None:
        import simplejpeg  # noqa: PLC0415  # lazy: chosen on first use

        self._lib = simplejpeg

    def encode(self, frame: Frame, quality: int) -> bytes:
        data: bytes = self._lib.encode_jpeg(
            np.ascontiguousarray(frame), quality=quality, colorspace="RGB", colorsubsampling="420"
        )
        return data

    def decode(self, data: bytes, min_side_px: int) -> Frame:
        frame: Frame = self._lib.decode_jpeg(
            data, colorspace="RGB", min_height=min_side_px, min_width=min_side_px
        )
        return frame

    def is_jpeg(self, data: bytes) -> bool:
        return bool(self._lib.is_jpeg(data))


class _Pillow:
    name = "pillow"

    def __init__(self) -> None:
        from PIL import Image  # noqa: PLC0415  # lazy: only where simplejpeg is missing

        self._image = Image

    def encode(self, frame: Frame, quality: int) -> bytes:
        out = io.BytesIO()
        image = self._image.fromarray(np.ascontiguousarray(frame), "RGB")
        image.save(out, "JPEG", quality=quality, subsampling=2)  # 2: 4:2:0
        return out.getvalue()

    def decode(self, data: bytes, min_side_px: int) -> Frame:
        with self._image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise ValueError(f"not a JPEG file ({image.format})")
            image.draft("RGB", (min_side_px, min_side_px))  # DCT scaling, as simplejpeg's min_*
            frame: Frame = np.asarray(image.convert("RGB"))
        return frame

    def is_jpeg(self, data: bytes) -> bool:
        return data[:3] == b"\xff\xd8\xff"


CODECS: dict[str, type[JpegCodec]] = {"simplejpeg": _SimpleJpeg, "pillow": _Pillow}


@functools.cache
def jpeg_codec(name: str | None = None) -> JpegCodec:
    """The named codec, or the first of CODECS that imports; ImportError naming both if none."""
    if name is not None:
        return CODECS[name]()
    missing: list[str] = []
    for each in CODECS.values():
        try:
            return each()
        except ImportError as exc:
            missing.append(str(exc))
    raise ImportError(
        "no JPEG encoder: install simplejpeg (pip, or python3-simplejpeg on Raspberry Pi OS) "
        f"or Pillow (python3-pil): {'; '.join(missing)}"
    )


def encode_jpeg(
    frame: Frame, quality: int = DEFAULT_JPEG_QUALITY, codec: JpegCodec | None = None
) -> bytes:
    """JPEG-encode an RGB frame (R, G, B channel order) with 4:2:0 chroma, like a camera does."""
    if not 1 <= quality <= 100:
        raise FrameError(f"jpeg quality must be 1..100, got {quality}")
    return (codec or jpeg_codec()).encode(frame, quality)


def frame_to_jpeg(
    frame: Frame,
    size_px: int = DEFAULT_SIZE_PX,
    quality: int = DEFAULT_JPEG_QUALITY,
    codec: JpegCodec | None = None,
) -> bytes:
    """A source frame (any size, RGB) to the square JPEG the Live API receives."""
    return encode_jpeg(to_square(frame, size_px), quality, codec)
