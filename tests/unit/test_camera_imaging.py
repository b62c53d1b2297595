"""Frames, centre-crop, area scaling and JPEG encoding of camera frames."""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import types

import numpy as np
import pytest
import simplejpeg
from hypothesis import example, given
from hypothesis import strategies as st

from pilive.camera.imaging import (
    Frame,
    FrameError,
    JpegCodec,
    _simplejpeg_imports,
    centre_square,
    codec_for,
    encode_jpeg,
    frame_from_array,
    frame_to_jpeg,
    jpeg_codec,
    numpy_is_loaded,
    to_square,
)
from tests.support.camera_rig import Array, as_array, as_rgbx, solid, solid_array

GREEN = (0, 255, 0)
MAGENTA = (255, 0, 255)


def framed(height: int, width: int) -> Frame:
    """Green margins around a magenta centred square: any stretch or off-centre crop shows."""
    array = solid_array(GREEN, height, width)
    left, top, side = centre_square(width, height)
    array[top : top + side, left : left + side] = MAGENTA
    return frame_from_array(array)


def random_frame(seed: int, height: int, width: int) -> tuple[Frame, Array]:
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return frame_from_array(array), array


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize(
    ("height", "width"),
    [(960, 1280), (1280, 960), (768, 768), (480, 640), (1944, 2592), (1080, 1920), (100, 50)],
)
def test_any_shape_becomes_the_centre_square_at_768(height: int, width: int, channels: int) -> None:
    """Landscape, portrait, square, smaller-than-768 (upscaled), RGB or RGBX: all become 768x768
    taken from the centred square only (no green margin survives), so nothing is stretched."""
    frame = framed(height, width)
    out = to_square(frame if channels == 3 else as_rgbx(frame), 768)
    assert (out.width_px, out.height_px, out.channels) == (768, 768, channels)
    assert (as_array(out) == MAGENTA).all()


def test_geometry_is_kept_not_stretched() -> None:
    """A circle in a landscape frame stays a circle: equal width and height after scaling."""
    height, width = 960, 1280
    yy, xx = np.mgrid[0:height, 0:width]
    array = np.zeros((height, width, 3), np.uint8)
    array[(yy - 480) ** 2 + (xx - 640) ** 2 <= 300**2] = 255
    out = as_array(to_square(frame_from_array(array), 768))
    lit = out[:, :, 0] > 127
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    assert abs((rows[-1] - rows[0]) - (cols[-1] - cols[0])) <= 1
    assert abs((rows[-1] - rows[0] + 1) - 600 * 768 / 960) <= 2


@given(
    side_out=st.integers(min_value=1, max_value=200),
    factor=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_whole_factor_downscale_is_the_block_mean(side_out: int, factor: int, seed: int) -> None:
    """Scaling down by a whole factor k: each output pixel is the mean of its k x k block,
    within one level (Pillow rounds after each of its two passes)."""
    side_in = side_out * factor
    frame, square = random_frame(seed, side_in, side_in)
    out = as_array(to_square(frame, side_out)).astype(np.float64)
    blocks = square.reshape(side_out, factor, side_out, factor, 3).mean(axis=(1, 3))
    assert np.abs(out - blocks).max() <= 1.0


@st.composite
def lone_pixels(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(side_in, side_out, x, y): a downscale of up to 20x and a pixel position in the input."""
    side_out = draw(st.integers(min_value=1, max_value=120))
    side_in = draw(st.integers(min_value=side_out, max_value=20 * side_out))
    x, y = (draw(st.integers(min_value=0, max_value=side_in - 1)) for _ in range(2))
    return side_in, side_out, x, y


@given(lone_pixels())
@example((221, 92, 0, 110))  # row 110's centre is exactly on the edge between outputs 45 and 46
@example((2000, 768, 1312, 437))  # likewise in both directions, scaling 2000 to 768
def test_every_input_pixel_counts(case: tuple[int, int, int, int]) -> None:
    """Area scaling, not picking: one white pixel anywhere in black lights exactly one output
    pixel, the one whose span holds its centre (either, when the centre is on the edge
    between two); nearest-neighbour picking would lose most such pixels."""
    side_in, side_out, x, y = case
    square = np.zeros((side_in, side_in, 3), np.uint8)
    square[y, x] = 255
    frame = frame_from_array(square)
    out = as_array(to_square(frame, side_out))
    assert np.array_equal(out, as_array(to_square(as_rgbx(frame), side_out)))  # RGBX alike
    lit_y, lit_x = np.nonzero(out[:, :, 0])
    assert len(lit_y) == 1
    scale = side_in / side_out
    assert lit_y[0] * scale - 1e-6 <= y + 0.5 <= (lit_y[0] + 1) * scale + 1e-6
    assert lit_x[0] * scale - 1e-6 <= x + 0.5 <= (lit_x[0] + 1) * scale + 1e-6


@given(
    side_in=st.integers(min_value=1, max_value=200),
    extra=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_upscale_copies_existing_pixels(side_in: int, extra: int, seed: int) -> None:
    """A source smaller than the target is enlarged by repeating pixels: no value is invented."""
    frame, square = random_frame(seed, side_in, side_in)
    out = as_array(to_square(frame, side_in + extra))
    values = {tuple(p) for p in square.reshape(-1, 3)}
    assert all(tuple(p) in values for p in out.reshape(-1, 3)[:: max(1, side_in // 3)])


def test_large_bins_do_not_overflow() -> None:
    """A 20x reduction of pure white (bins of 400 pixels) stays white."""
    out = to_square(solid((255, 255, 255), 2000, 2000), 100)
    assert (as_array(out) == 255).all()


def test_a_camera_array_is_wrapped_not_copied() -> None:
    """A C-contiguous numpy array (picamera2's) becomes a Frame over the same memory; a strided
    view is copied into a packed frame with the same pixels; a frame already at the size wanted
    goes to the encoder as it is."""
    array = solid_array((1, 2, 3), 48, 64)
    frame = frame_from_array(array)
    assert (frame.width_px, frame.height_px) == (64, 48)
    assert np.shares_memory(as_array(frame), array)
    strided = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)[:, ::2]
    packed = frame_from_array(strided)
    assert (packed.width_px, packed.height_px) == (32, 48)
    assert np.array_equal(as_array(packed), strided)
    same = frame_from_array(solid_array((9, 9, 9), 32, 32))
    assert to_square(same, 32) is same


def test_centre_square_geometry() -> None:
    """(left, top, side) of the centred square, landscape and portrait."""
    assert centre_square(1280, 960) == (160, 0, 960)
    assert centre_square(960, 1280) == (0, 160, 960)
    assert centre_square(5, 5) == (0, 0, 5)


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
    frame, _ = random_frame(1, 256, 256)
    assert len(encode_jpeg(frame, 95)) > len(encode_jpeg(frame, 30))
    assert len(frame_to_jpeg(frame, 128, 95)) > len(frame_to_jpeg(frame, 128, 30))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "buffer protocol"),
    ],
)
def test_bad_arrays_are_named(bad: object, words: str) -> None:
    """A wrong array raises FrameError saying what was wrong with it."""
    with pytest.raises(FrameError, match=words):
        frame_from_array(bad)


def test_bad_frames_are_named() -> None:
    """A frame whose buffer does not match its size, or with no pixels, is refused by name."""
    with pytest.raises(FrameError, match="is 300 bytes, got 299"):
        Frame(10, 10, bytes(299))
    with pytest.raises(FrameError, match="empty"):
        Frame(0, 10, b"")
    with pytest.raises(FrameError, match="contiguous"):
        Frame(2, 2, memoryview(bytes(24))[::2])
    with pytest.raises(FrameError, match=r"channels must be 3 \(RGB\) or 4 \(RGBX\), got 5"):
        Frame(2, 2, bytes(20), 5)
    with pytest.raises(FrameError, match="RGBX frame is 16 bytes, got 12"):
        Frame(2, 2, bytes(12), 4)


def test_an_rgbx_frame_is_mapped_not_copied() -> None:
    """Pillow takes an RGBX frame's buffer as its image (read-only: mapped, not unpacked into a
    copy), so a frame in flight is one buffer; an RGB frame is unpacked into Pillow's own."""
    rgb = framed(768, 768)
    pillow = codec_or_skip("pillow")
    assert pillow.square_image(as_rgbx(rgb), 768).readonly  # type: ignore[attr-defined]
    assert not pillow.square_image(rgb, 768).readonly  # type: ignore[attr-defined]


def test_bad_quality_and_size_are_named() -> None:
    """Out-of-range settings are refused with the setting's name."""
    with pytest.raises(FrameError, match="quality"):
        encode_jpeg(solid((0, 0, 0)), 0)
    with pytest.raises(FrameError, match="quality"):
        frame_to_jpeg(solid((0, 0, 0)), 64, 101)
    with pytest.raises(FrameError, match="size_px"):
        to_square(solid((0, 0, 0)), 0)


# --- the JPEG codecs: Pillow for everything, simplejpeg where numpy is loaded anyway -------------

CODEC_NAMES = ("simplejpeg", "pillow")


def codec_or_skip(name: str) -> JpegCodec:
    try:
        return jpeg_codec(name)
    except ImportError as exc:
        pytest.skip(f"{name} is not installed: {exc}")


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_each_codec_encodes_what_the_other_decodes(name: str, channels: int) -> None:
    """Both codecs write a 4:2:0 baseline JPEG of the right size and colours from RGB and RGBX
    frames, readable by the other one (what the Live API receives does not depend on which
    encoded it)."""
    codec = codec_or_skip(name)
    other = codec_or_skip(next(n for n in CODEC_NAMES if n != name))
    frame = framed(480, 640) if channels == 3 else as_rgbx(framed(480, 640))
    jpeg = frame_to_jpeg(frame, 768, 80, codec)
    assert codec.is_jpeg(jpeg)
    assert other.is_jpeg(jpeg)
    decoded = other.decode(jpeg, 768)
    assert (decoded.width_px, decoded.height_px) == (768, 768)
    r, g, b = (int(v) for v in as_array(decoded)[300:460, 300:460].reshape(-1, 3).mean(axis=0))
    assert (r, b) > (230, 230)
    assert g < 30


def test_both_codecs_send_the_same_picture() -> None:
    """The same 768x768 picture encoded by either codec, from RGB or RGBX, decodes to nearly
    the same pixels (both are libjpeg-turbo at the same quality and chroma subsampling)."""
    frame = framed(768, 1024)
    pillow, simple = codec_or_skip("pillow"), codec_or_skip("simplejpeg")
    a = as_array(pillow.decode(frame_to_jpeg(frame, 768, 80, pillow), 768)).astype(int)
    b = as_array(pillow.decode(frame_to_jpeg(frame, 768, 80, simple), 768)).astype(int)
    assert np.abs(a - b).mean() < 1.0
    square = as_rgbx(to_square(frame, 768))  # as the synthetic source hands it out
    c = as_array(pillow.decode(encode_jpeg(square, 80, pillow), 768)).astype(int)
    d = as_array(pillow.decode(encode_jpeg(square, 80, simple), 768)).astype(int)
    assert np.abs(c - a).mean() < 1.0
    assert np.abs(d - a).mean() < 1.0


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_each_codec_decodes_big_jpegs_at_reduced_size(name: str) -> None:
    """Decoding uses DCT scaling: a 2048 px JPEG comes back reduced but never below the size
    asked for (simplejpeg scales in eighths, Pillow in halvings: 768 and 1024 for 700)."""
    codec = codec_or_skip(name)
    jpeg = encode_jpeg(solid((10, 200, 10), 2048, 2048), 90, codec)
    small = codec.decode(jpeg, 512)
    assert (small.width_px, small.height_px) == (512, 512)
    side = codec.decode(jpeg, 700).width_px
    assert 700 <= side <= 1024
    assert not codec.is_jpeg(b"\x89PNG\r\n\x1a\n")


def test_the_codec_follows_numpy_and_the_frame() -> None:
    """Pillow crops, scales and encodes unless numpy is loaded anyway and the frame needs
    neither cropping nor scaling (the Pi camera's): then simplejpeg encodes it as it is."""
    codec_or_skip("simplejpeg")
    assert codec_for(reshaping=False, numpy_loaded=True).name == "simplejpeg"
    assert codec_for(reshaping=True, numpy_loaded=True).name == "pillow"
    assert codec_for(reshaping=False, numpy_loaded=False).name == "pillow"
    assert codec_for(reshaping=True, numpy_loaded=False).name == "pillow"


def test_the_pi_cameras_array_is_encoded_straight_from_it() -> None:
    """A 768x768 array as picamera2 hands it out (numpy is loaded here, as picamera2 loads it)
    is encoded by simplejpeg from the frame that wraps it, and comes back the same colour."""
    codec_or_skip("simplejpeg")
    array = solid_array((200, 30, 30), 768, 768)
    frame = frame_from_array(array)
    assert codec_for(reshaping=False, numpy_loaded=numpy_is_loaded()).name == "simplejpeg"
    decoded = simplejpeg.decode_jpeg(frame_to_jpeg(frame, 768, 80), colorspace="RGB")
    assert decoded.shape == (768, 768, 3)
    r, g, b = (int(v) for v in decoded.reshape(-1, 3).mean(axis=0))
    assert r > 180 and g < 50 and b < 50


def test_numpy_still_being_imported_is_not_loaded_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy is in sys.modules from the moment another thread (the microphone opening) starts
    importing it; until that import has finished the camera keeps to Pillow, so a frame never
    waits on it and simplejpeg is never tried against a half-made numpy."""
    partial = types.ModuleType("numpy")
    partial.__spec__ = importlib.machinery.ModuleSpec("numpy", None)
    partial.__spec__._initializing = True  # what the import system sets while it runs the module
    monkeypatch.setitem(sys.modules, "numpy", partial)
    assert not numpy_is_loaded()
    partial.__spec__._initializing = False
    assert numpy_is_loaded()
    monkeypatch.delitem(sys.modules, "numpy")
    assert not numpy_is_loaded()


def test_pillow_encodes_where_simplejpeg_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without simplejpeg (no wheel on 32-bit Debian), even a frame at the size wanted, with
    numpy loaded, is encoded by Pillow; the log says why, once."""
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import simplejpeg raises ImportError
    jpeg_codec.cache_clear()
    _simplejpeg_imports.cache_clear()
    caplog.set_level(logging.INFO, logger="pilive.camera.imaging")
    try:
        assert codec_for(reshaping=False, numpy_loaded=True).name == "pillow"
        assert jpeg_codec("pillow").is_jpeg(frame_to_jpeg(framed(64, 64), 64))
        assert codec_for(reshaping=False, numpy_loaded=True).name == "pillow"
        assert _simplejpeg_imports.cache_info().misses == 1  # asked once, not every frame
        said = [r.getMessage() for r in caplog.records if "simplejpeg" in r.getMessage()]
        assert len(said) == 1 and "Pillow encodes every frame" in said[0]
    finally:
        jpeg_codec.cache_clear()
        _simplejpeg_imports.cache_clear()


def test_no_pillow_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Pillow the error says what to install, on a Pi and elsewhere."""
    monkeypatch.setitem(sys.modules, "PIL", None)
    jpeg_codec.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install pillow.*python3-pil"):
            frame_to_jpeg(framed(64, 80), 64)
    finally:
        jpeg_codec.cache_clear()
