"""Frames to square JPEGs: centre-crop, area-scale and encode, without numpy unless it is loaded.

A `Frame` is width x height pixels in one packed buffer (rows without padding), each R, G, B
bytes, or R, G, B and a byte that is not used (RGBX). Sources make it from bytes (the synthetic
source, decoded files) or wrap a numpy array without copying it (picamera2), since an array
exposes the buffer protocol. The Live API wants discrete JPEG frames, best at 768x768; anything
else is centre-cropped to a square (never stretched) and scaled.

Crop, scale and encode run in Pillow (Debian's python3-pil; libjpeg-turbo underneath):
- an RGBX frame is Pillow's own layout: Pillow maps its buffer as an image without copying it
  (an RGB frame is unpacked to four bytes a pixel, only the square's rows);
- downscaling is Pillow's BOX filter: each output pixel is the mean of the input pixels whose
  centres fall inside its span, so every input pixel counts exactly once (see _EDGE_NUDGE_PX)
  and nothing aliases;
- upscaling (a source smaller than the target) replicates pixels (nearest neighbour): there is
  no detail to invent, and a model reads blocky edges better than blurred ones.
Measured by `tests/bench/bench_camera.py` on x86-64 (CPU per frame): Pillow crops and scales a
1280x960 frame to 768 and encodes it in about 9 ms, against about 30 ms for the numpy area
filter and simplejpeg it replaced; and numpy (about 10 MB of RSS with simplejpeg) need not load
for a camera at all.

simplejpeg (what picamera2 itself uses) encodes a frame that needs no cropping or scaling when
numpy is loaded anyway: the Pi camera hands out numpy arrays at exactly the size asked for, and
simplejpeg encodes one straight from the array (an RGB 768x768 frame: 1.5 ms against Pillow's
2.1 ms, which unpacks it first).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_SIZE_PX = 768
DEFAULT_JPEG_QUALITY = 80
CHANNELS = 3  # R, G, B bytes per pixel
RGBX_CHANNELS = 4  # R, G, B and one byte not used: how Pillow holds RGB, and maps without a copy
_PILLOW_MODES = {CHANNELS: "RGB", RGBX_CHANNELS: "RGBX"}


class FrameError(ValueError):
    """A frame has the wrong shape or type; the message names what was wrong."""


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """An image: `height_px` rows of `width_px` pixels, rows packed; each pixel `channels`
    bytes: 3 (R, G, B) or 4 (R, G, B and a byte not used).

    `data` is any C-contiguous buffer of exactly width * height * channels bytes: bytes, or a
    memoryview of a camera's numpy array (see `frame_from_array`), which is not copied.
    """

    width_px: int
    height_px: int
    data: bytes | bytearray | memoryview
    channels: int = CHANNELS

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise FrameError(f"frame is empty: {self.width_px}x{self.height_px} pixels")
        if self.channels not in _PILLOW_MODES:
            raise FrameError(f"frame channels must be 3 (RGB) or 4 (RGBX), got {self.channels}")
        view = memoryview(self.data)
        if not view.c_contiguous:
            raise FrameError("frame data must be one contiguous buffer")
        wanted = self.width_px * self.height_px * self.channels
        if view.nbytes != wanted:
            raise FrameError(
                f"a {self.width_px}x{self.height_px} {_PILLOW_MODES[self.channels]} frame is"
                f" {wanted} bytes, got {view.nbytes}"
            )

    @property
    def stride_bytes(self) -> int:
        """Bytes from one row to the next."""
        return self.width_px * self.channels

    def row(self, y: int) -> memoryview:
        """Row `y` as width_px * channels bytes (a view, no copy)."""
        stride = self.stride_bytes
        return memoryview(self.data).cast("B")[y * stride : (y + 1) * stride]


def frame_from_array(array: object) -> Frame:
    """A Frame over an RGB uint8 array of shape (height, width, 3), such as picamera2's or a
    decoder's numpy array, through the buffer protocol: no numpy needed here, and no copy unless
    the array is not C-contiguous. Anything else raises FrameError saying what was wrong."""
    try:
        view = memoryview(array)  # type: ignore[arg-type]  # any buffer; refused below if not
    except TypeError:
        raise FrameError(
            f"frame must be an RGB uint8 array (buffer protocol), got {type(array).__name__}"
        ) from None
    if view.format != "B":
        raise FrameError(f"frame must have uint8 items, got buffer format {view.format!r}")
    if view.ndim != 3 or view.shape is None or view.shape[2] != CHANNELS:
        raise FrameError(f"frame must have shape (height, width, 3), got {view.shape}")
    height_px, width_px = view.shape[0], view.shape[1]
    if height_px == 0 or width_px == 0:
        raise FrameError(f"frame is empty: shape {view.shape}")
    flat = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
    return Frame(width_px, height_px, flat)


def centre_square(width_px: int, height_px: int) -> tuple[int, int, int]:
    """(left, top, side) of the largest centred square of a width x height frame."""
    side = min(width_px, height_px)
    return (width_px - side) // 2, (height_px - side) // 2, side


def _check_size(size_px: int) -> None:
    if size_px <= 0:
        raise FrameError(f"size_px must be positive, got {size_px}")


def _check_quality(quality: int) -> None:
    if not 1 <= quality <= 100:
        raise FrameError(f"jpeg quality must be 1..100, got {quality}")


class JpegCodec(Protocol):
    """What pilive needs from a JPEG library: Frames in, bytes out, and back."""

    name: str

    def encode(self, frame: Frame, quality: int) -> bytes:
        """Baseline JPEG of the frame as it is, 4:2:0 chroma, at `quality` (1..100)."""
        ...

    def square_jpeg(self, frame: Frame, size_px: int, quality: int) -> bytes:
        """The centre square of `frame`, scaled to size_px, as a baseline 4:2:0 JPEG."""
        ...

    def decode(self, data: bytes, min_side_px: int) -> Frame:
        """RGB frame, reduced by DCT scaling while both sides stay >= min_side_px."""
        ...

    def is_jpeg(self, data: bytes) -> bool: ...


# Pillow's box filter drops an input pixel whose centre falls exactly on the edge between two
# output pixels' spans (it tests both edges in floating point, and the pixel can fail both: 10
# rows of 2000 scaled to 768, some pixel in 37 of 300 random ratios). Starting the spans this
# far in (a power of two, exact in Pillow's float box) moves every edge off the pixel centres
# by less than any real gap between an edge and a centre, so each pixel counts exactly once.
_EDGE_NUDGE_PX = 2.0**-16


class _Pillow:
    name = "pillow"

    def __init__(self) -> None:
        try:
            from PIL import Image  # noqa: PLC0415  # lazy: the camera's first frame
        except ImportError as exc:
            raise ImportError(
                "Pillow crops, scales and encodes camera frames: install it (pip install pillow, "
                f"or python3-pil on Debian and Raspberry Pi OS): {exc}"
            ) from exc
        self._image = Image

    def _image_of(
        self, frame: Frame, box: tuple[int, int, int, int]
    ) -> tuple[Image.Image, tuple[int, int, int, int]]:
        """A Pillow image holding the part `box` (left, top, right, bottom) of the frame, and
        where that part is in the image."""
        mode = _PILLOW_MODES[frame.channels]
        if frame.channels == RGBX_CHANNELS:
            # Pillow's own layout: the whole buffer is mapped as an image, not copied, and the
            # box is cut by whatever comes next. Any buffer maps; the type hints name bytes.
            size = (frame.width_px, frame.height_px)
            data = frame.data
            image = self._image.frombuffer(mode, size, data, "raw", mode, 0, 1)  # type: ignore[arg-type]
            return image, box
        # RGB is unpacked to four bytes a pixel: only the box's rows, stepping by the frame's
        # stride. Pillow before 10 (Bookworm's 9.4) unpacks bytes only, not other buffers, so a
        # wrapped camera array is copied here (only where simplejpeg is missing; see codec_for).
        left, top, right, bottom = box
        stride = frame.stride_bytes
        start = top * stride + left * CHANNELS
        end = start + (bottom - top - 1) * stride + (right - left) * CHANNELS
        data = frame.data
        if isinstance(data, bytes):
            window = data[start:end]  # the whole of it, uncopied, when the box is the frame
        else:
            window = bytes(memoryview(data).cast("B")[start:end])
        size = (right - left, bottom - top)
        image = self._image.frombuffer(mode, size, window, "raw", mode, stride, 1)
        return image, (0, 0, right - left, bottom - top)

    def square_image(self, frame: Frame, size_px: int) -> Image.Image:
        """The centre square at size_px as a Pillow image (RGB or RGBX, as the frame is)."""
        left, top, side = centre_square(frame.width_px, frame.height_px)
        image, box = self._image_of(frame, (left, top, left + side, top + side))
        if side > size_px:
            span = (box[0] + _EDGE_NUDGE_PX, box[1] + _EDGE_NUDGE_PX, box[2], box[3])
            return image.resize((size_px, size_px), self._image.Resampling.BOX, box=span)
        if side < size_px:
            return image.resize((size_px, size_px), self._image.Resampling.NEAREST, box=box)
        return image if image.size == (side, side) else image.crop(box)

    def _save(self, image: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, subsampling=2)  # 2: 4:2:0
        return out.getvalue()

    def encode(self, frame: Frame, quality: int) -> bytes:
        image, _ = self._image_of(frame, (0, 0, frame.width_px, frame.height_px))
        return self._save(image, quality)

    def square_jpeg(self, frame: Frame, size_px: int, quality: int) -> bytes:
        return self._save(self.square_image(frame, size_px), quality)

    def decode(self, data: bytes, min_side_px: int) -> Frame:
        try:
            opened = self._image.open(io.BytesIO(data))
        except self._image.DecompressionBombError as exc:  # not an OSError: a bad file too
            raise ValueError(str(exc)) from None
        with opened as image:
            if image.format != "JPEG":
                raise ValueError(f"not a JPEG file ({image.format})")
            image.draft("RGB", (min_side_px, min_side_px))  # DCT scaling, as simplejpeg's min_*
            rgb = image.convert("RGB")
        return Frame(rgb.width, rgb.height, rgb.tobytes())

    def is_jpeg(self, data: bytes) -> bool:
        return data[:3] == b"\xff\xd8\xff"


class _SimpleJpeg:
    name = "simplejpeg"

    def __init__(self) -> None:
        import numpy  # noqa: PLC0415  # simplejpeg takes and returns numpy arrays
        import simplejpeg  # noqa: PLC0415  # lazy: only where numpy is loaded anyway

        self._np = numpy
        self._lib = simplejpeg

    def encode(self, frame: Frame, quality: int) -> bytes:
        array = self._np.frombuffer(frame.data, dtype=self._np.uint8).reshape(
            frame.height_px, frame.width_px, frame.channels
        )
        colorspace = _PILLOW_MODES[frame.channels]  # simplejpeg's names too: "RGB", "RGBX"
        data: bytes = self._lib.encode_jpeg(
            array, quality=quality, colorspace=colorspace, colorsubsampling="420"
        )
        return data

    def square_jpeg(self, frame: Frame, size_px: int, quality: int) -> bytes:
        return self.encode(to_square(frame, size_px), quality)

    def decode(self, data: bytes, min_side_px: int) -> Frame:
        return frame_from_array(
            self._lib.decode_jpeg(
                data, colorspace="RGB", min_height=min_side_px, min_width=min_side_px
            )
        )

    def is_jpeg(self, data: bytes) -> bool:
        return bool(self._lib.is_jpeg(data))


CODECS: dict[str, type[JpegCodec]] = {"pillow": _Pillow, "simplejpeg": _SimpleJpeg}


@functools.cache
def jpeg_codec(name: str) -> JpegCodec:
    """The named codec ("pillow" or "simplejpeg"), built once; ImportError saying what to
    install when its library is missing."""
    return CODECS[name]()


def numpy_is_loaded() -> bool:
    """Whether something in this process (picamera2, resampling, echo cancelling) has loaded
    numpy. A numpy still being imported by another thread (the microphone opening) does not
    count yet: the frame would wait for it, and the next frame finds it ready."""
    numpy = sys.modules.get("numpy")
    spec = getattr(numpy, "__spec__", None)
    return numpy is not None and not getattr(spec, "_initializing", False)


def codec_for(*, reshaping: bool, numpy_loaded: bool) -> JpegCodec:
    """simplejpeg for a frame that goes to the encoder as it is (no crop or scale) while numpy
    is loaded anyway, where it imports; Pillow for everything else. See the module docstring
    for the measurements."""
    if numpy_loaded and not reshaping and _simplejpeg_imports():
        return jpeg_codec("simplejpeg")
    return jpeg_codec("pillow")


@functools.cache
def _simplejpeg_imports() -> bool:
    """Asked once: a failed import is not cached by Python, and would be retried every frame
    (32-bit Debian without python3-simplejpeg, where Pillow encodes instead)."""
    try:
        jpeg_codec("simplejpeg")
    except ImportError as exc:
        log.info("camera: simplejpeg does not import (%s); Pillow encodes every frame", exc)
        return False
    return True


def to_square(frame: Frame, size_px: int = DEFAULT_SIZE_PX) -> Frame:
    """The centre square of any frame at size_px x size_px (the frame itself when it already
    is); never stretches."""
    _check_size(size_px)
    if frame.width_px == frame.height_px == size_px:
        return frame
    pillow = jpeg_codec("pillow")
    assert isinstance(pillow, _Pillow)
    return Frame(size_px, size_px, pillow.square_image(frame, size_px).tobytes(), frame.channels)


def encode_jpeg(
    frame: Frame, quality: int = DEFAULT_JPEG_QUALITY, codec: JpegCodec | None = None
) -> bytes:
    """JPEG-encode a frame as it is (R, G, B channel order) with 4:2:0 chroma, like a camera."""
    _check_quality(quality)
    chosen = codec or codec_for(reshaping=False, numpy_loaded=numpy_is_loaded())
    return chosen.encode(frame, quality)


def frame_to_jpeg(
    frame: Frame,
    size_px: int = DEFAULT_SIZE_PX,
    quality: int = DEFAULT_JPEG_QUALITY,
    codec: JpegCodec | None = None,
) -> bytes:
    """A source frame (any size, RGB) to the square JPEG the Live API receives."""
    _check_size(size_px)
    _check_quality(quality)
    reshaping = not frame.width_px == frame.height_px == size_px
    chosen = codec or codec_for(reshaping=reshaping, numpy_loaded=numpy_is_loaded())
    return chosen.square_jpeg(frame, size_px, quality)
