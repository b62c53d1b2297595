"""Centre-crop, area scaling and JPEG encoding of camera frames."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import simplejpeg
from hypothesis import given
from hypothesis import strategies as st

from pilive.camera.imaging import (
    FrameError,
    JpegCodec,
    centre_square,
    encode_jpeg,
    frame_to_jpeg,
    jpeg_codec,
    to_square,
)
from tests.support.camera_rig import solid

GREEN = (0, 255, 0)
MAGENTA = (255, 0, 255)


def framed(height: int, width: int) -> np.ndarray:
    """Green margins around a magenta centred square: any stretch or off-centre crop shows."""
    frame = solid(GREEN, height, width)
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top : top + side, left : left + side] = MAGENTA
    return frame


@pytest.mark.parametrize(
    ("height", "width"),
    [(960, 1280), (1280, 960), (768, 768), (480, 640), (1944, 2592), (1080, 1920), (100, 50)],
)
def test_any_shape_becomes_the_centre_square_at_768(height: int, width: int) -> None:
    """Landscape, portrait, square, smaller-than-768 (upscaled): all become 768x768 RGB taken
    from the centred square only (no green margin survives), so nothing is stretched."""
    out = to_square(framed(height, width), 768)
    assert out.shape == (768, 768, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]
    assert (out == MAGENTA).all()


def test_geometry_is_kept_not_stretched() -> None:
    """A circle in a landscape frame stays a circle: equal width and height after scaling."""
    height, width = 960, 1280
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.zeros((height, width, 3), np.uint8)
    frame[(yy - 480) ** 2 + (xx - 640) ** 2 <= 300**2] = 255
    out = to_square(frame, 768)
    lit = out[:, :, 0] > 127
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    assert abs((rows[-1] - rows[0]) - (cols[-1] - cols[0])) <= 1
    assert abs((rows[-1] - rows[0] + 1) - 600 * 768 / 960) <= 2


@given(
    side_in=st.integers(min_value=1, max_value=700),
    side_out=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_downscale_is_the_exact_bin_mean(side_in: int, side_out: int, seed: int) -> None:
    """Each output pixel is the rounded mean of its input bin rows x cols (area filter); every
    input pixel counts; upscales copy an existing pixel value."""
    rng = np.random.default_rng(seed)
    square = rng.integers(0, 256, (side_in, side_in, 3), dtype=np.uint8)
    out = to_square(square, side_out)
    assert out.shape == (side_out, side_out, 3)
    if side_in < side_out:
        values = {tuple(p) for p in square.reshape(-1, 3)}
        assert all(tuple(p) in values for p in out[:: max(1, side_out // 7), 0])
        return
    starts = (np.arange(side_out) * side_in) // side_out
    ends = np.append(starts[1:], side_in)
    for i in range(0, side_out, max(1, side_out // 5)):
        for j in range(0, side_out, max(1, side_out // 5)):
            block = square[starts[i] : ends[i], starts[j] : ends[j]].reshape(-1, 3)
            # Rounded to nearest; float32 weights may tip an exact .5 either way.
            assert np.abs(out[i, j] - block.mean(axis=0)).max() <= 0.5 + 1e-3


def test_large_bins_do_not_overflow() -> None:
    """A 20x reduction of pure white (bins of 400 pixels) stays white: sums are wide enough."""
    out = to_square(solid((255, 255, 255), 2000, 2000), 100)
    assert (out == 255).all()


def test_centre_square_is_a_view() -> None:
    """Cropping copies nothing; only the scaled output is new memory."""
    frame = framed(480, 640)
    assert np.shares_memory(centre_square(frame), frame)


def test_colour_order_survives_encode_and_decode() -> None:
    """A red RGB frame comes back red from the JPEG (R high, G and B low): no channel swap."""
    jpeg = frame_to_jpeg(solid((230, 20, 20), 480, 640), 768, 80)
    assert simplejpeg.is_jpeg(jpeg)
    assert simplejpeg.decode_jpeg_header(jpeg)[:2] == (768, 768)
    decoded = simplejpeg.decode_jpeg(jpeg, colorspace="RGB")
    r, g, b = (int(v) for v in decoded.reshape(-1, 3).mean(axis=0))
    assert r > 200
    assert g < 50
    assert b < 50


def test_quality_changes_the_size() -> None:
    """jpeg_quality reaches the encoder: a busy frame is larger at 95 than at 30."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert len(encode_jpeg(frame, 95)) > len(encode_jpeg(frame, 30))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_frames_are_named(bad: object, words: str) -> None:
    """A wrong frame raises FrameError saying what was wrong with it."""
    with pytest.raises(FrameError, match=words):
        to_square(bad)  # type: ignore[arg-type]


def test_bad_quality_and_size_are_named() -> None:
    """Out-of-range settings are refused with the setting's name."""
    with pytest.raises(FrameError, match="quality"):
        encode_jpeg(solid((0, 0, 0)), 0)
    with pytest.raises(FrameError, match="size_px"):
        to_square(solid((0, 0, 0)), 0)


# --- the JPEG codec: simplejpeg, or Pillow where simplejpeg is missing (32-bit Debian) -----------

CODEC_NAMES = ("simplejpeg", "pillow")


def codec_or_skip(name: str) -> JpegCodec:
    try:
        return jpeg_codec(name)
    except ImportError as exc:
        pytest.skip(f"{name} is not installed: {exc}")


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_each_codec_encodes_what_the_other_decodes(name: str) -> None:
    """Both codecs write a 4:2:0 baseline JPEG of the right size and colours, readable by the
    other one (what the Live API receives does not depend on which is installed)."""
    codec = codec_or_skip(name)
    other = codec_or_skip(next(n for n in CODEC_NAMES if n != name))
    jpeg = frame_to_jpeg(framed(480, 640), 768, 80, codec)
    assert codec.is_jpeg(jpeg)
    assert other.is_jpeg(jpeg)
    decoded = other.decode(jpeg, 768)
    assert decoded.shape == (768, 768, 3)
    r, g, b = (int(v) for v in decoded[300:460, 300:460].reshape(-1, 3).mean(axis=0))
    assert (r, b) > (230, 230)
    assert g < 30


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_each_codec_decodes_big_jpegs_at_reduced_size(name: str) -> None:
    """Decoding uses DCT scaling: a 2048 px JPEG comes back reduced but never below the size
    asked for (simplejpeg scales in eighths, Pillow in halvings: 768 and 1024 for 700)."""
    codec = codec_or_skip(name)
    jpeg = encode_jpeg(solid((10, 200, 10), 2048, 2048), 90, codec)
    assert codec.decode(jpeg, 512).shape == (512, 512, 3)
    side = codec.decode(jpeg, 700).shape[0]
    assert 700 <= side <= 1024
    assert not codec.is_jpeg(b"\x89PNG\r\n\x1a\n")


def test_pillow_is_chosen_when_simplejpeg_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without simplejpeg (no wheel on 32-bit Debian), encoding falls back to Pillow."""
    codec_or_skip("pillow")
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import simplejpeg raises ImportError
    jpeg_codec.cache_clear()
    try:
        assert jpeg_codec().name == "pillow"
        assert jpeg_codec().is_jpeg(encode_jpeg(framed(64, 64)))
    finally:
        jpeg_codec.cache_clear()


def test_no_codec_at_all_names_both_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither installed the error says what to install, on a Pi and elsewhere."""
    monkeypatch.setitem(sys.modules, "simplejpeg", None)
    monkeypatch.setitem(sys.modules, "PIL", None)
    jpeg_codec.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"python3-simplejpeg.*python3-pil"):
            encode_jpeg(framed(64, 64))
    finally:
        jpeg_codec.cache_clear()
