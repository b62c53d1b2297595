"""Frame sources: the synthetic pattern, the image folder, the factory by config name."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import simplejpeg

from pilive.camera.sources import (
    BLACK,
    GLYPHS,
    PIXEL_BYTES,
    WHITE,
    CameraError,
    FileSource,
    SyntheticSource,
    make_source_factory,
    render_text,
)
from tests.support.camera_rig import as_array, solid_array


def test_synthetic_frames_move_and_show_the_time() -> None:
    """Consecutive synthetic frames differ (the pattern moves), and the clock label is drawn:
    the top-left box holds exactly the rendered label, white on black."""
    source = SyntheticSource(768, 768, clock=lambda: 0.0)
    source.start()
    first, second = source.capture_array(), source.capture_array()
    assert (first.width_px, first.height_px, first.channels) == (768, 768, PIXEL_BYTES)
    assert first.data != second.data
    scale = 768 // 128
    tm = time.localtime(0.0)
    text = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.0 #1"
    rows = render_text(text, scale, WHITE, BLACK)
    margin = 2 * scale
    for y, row in enumerate(rows):
        drawn = first.row(margin + y)[margin * PIXEL_BYTES : margin * PIXEL_BYTES + len(row)]
        assert drawn == row
    assert first.row(0)[: margin * PIXEL_BYTES] == BLACK * margin  # the label's black box
    source.close()


def test_synthetic_frames_scroll_the_gradient() -> None:
    """Below the label and away from the square, frame n+1 is frame n moved right by the
    speed: the gradient scrolls, as numpy's roll along x would move it."""
    source = SyntheticSource(256, 192, clock=lambda: 0.0, speed_px=10)
    source.start()
    first, second = (as_array(source.capture_array()) for _ in range(2))
    below = slice(100, 192)  # the square runs along the diagonal; these rows' left part is clear
    assert np.array_equal(second[below, 10:60], first[below, 0:50])
    assert np.array_equal(np.roll(first[150], 10, axis=0)[:60], second[150, :60])


def test_synthetic_frames_are_cheap_to_make_at_other_sizes() -> None:
    """Non-square synthetic sizes work (the streamer squares them); too small is refused."""
    source = SyntheticSource(1280, 720)
    source.start()
    frame = source.capture_array()
    assert (frame.width_px, frame.height_px) == (1280, 720)
    with pytest.raises(ValueError, match="64x64"):
        SyntheticSource(10, 10)
    with pytest.raises(CameraError, match="before start"):
        SyntheticSource().capture_array()


def test_font_has_the_clock_characters() -> None:
    """Every glyph is 5x7; unknown characters are named, not silently dropped."""
    assert all(len(rows) == 7 and {len(r) for r in rows} == {5} for rows in GLYPHS.values())
    rows = render_text("12:34", 2)
    assert len(rows) == 14
    assert {len(r) for r in rows} == {60}
    assert rows[0][:12] == bytes([0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0])  # "1": "  #  " + gap
    with pytest.raises(ValueError, match="'x'"):
        render_text("x1", 1)


def write_jpeg(path: Path, rgb: tuple[int, int, int], height: int, width: int) -> None:
    path.write_bytes(simplejpeg.encode_jpeg(solid_array(rgb, height, width), 90, "RGB"))


def test_file_source_cycles_jpeg_and_npy_and_skips_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """JPEG and .npy files come back in name order, round and round; a PNG is named in a
    warning and skipped; a corrupt JPEG is named once and skipped without stopping the cycle."""
    write_jpeg(tmp_path / "a.jpg", (250, 0, 0), 480, 640)
    np.save(tmp_path / "b.npy", solid_array((0, 250, 0), 100, 200))
    (tmp_path / "c.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "sub").mkdir()
    source = FileSource(tmp_path, size_px=768)
    with caplog.at_level(logging.WARNING):
        source.start()
        seen = [source.capture_array() for _ in range(4)]
    colours = [
        tuple(int(v) for v in as_array(frame).reshape(-1, 3).mean(axis=0).round(-1))
        for frame in seen
    ]
    assert colours == [(250, 0, 0), (0, 250, 0), (250, 0, 0), (0, 250, 0)]
    assert (seen[0].width_px, seen[0].height_px) == (640, 480)
    assert (seen[1].width_px, seen[1].height_px) == (200, 100)
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("d.png" in w for w in warnings) == 1
    assert sum("c.jpeg" in w for w in warnings) == 1


def test_file_source_decodes_big_jpegs_at_reduced_size(tmp_path: Path) -> None:
    """A large JPEG is decoded with DCT scaling, no smaller than the 768 target."""
    write_jpeg(tmp_path / "big.jpg", (10, 20, 200), 3200, 4000)
    source = FileSource(tmp_path, size_px=768)
    source.start()
    frame = source.capture_array()
    assert 768 <= min(frame.width_px, frame.height_px) < 3200


def test_file_source_skips_a_jpeg_too_big_to_decode_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A JPEG whose header says 14000x14000 (196 MP, over Pillow's decompression-bomb limit, as
    a 200 MP phone photo is) is named in a warning and skipped like any unreadable file; the
    folder's other image still comes, first time and every time, so the camera does not stop."""
    write_jpeg(tmp_path / "a.jpg", (250, 0, 0), 64, 64)
    small = bytearray((tmp_path / "a.jpg").read_bytes())
    sof = small.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    small[sof + 5 : sof + 9] = (14000).to_bytes(2, "big") * 2
    (tmp_path / "0-huge.jpg").write_bytes(bytes(small))
    source = FileSource(tmp_path, size_px=768)
    source.start()
    with caplog.at_level(logging.WARNING):
        frames = [source.capture_array() for _ in range(3)]
    assert all((f.width_px, f.height_px) == (64, 64) for f in frames)
    assert sum("0-huge.jpg" in r.getMessage() for r in caplog.records) == 1


def test_file_source_errors_name_the_folder(tmp_path: Path) -> None:
    """A missing folder, a folder with nothing usable, or all files bad: errors name it."""
    with pytest.raises(CameraError, match="not a directory"):
        FileSource(tmp_path / "missing").start()
    (tmp_path / "only.png").write_bytes(b"png")
    with pytest.raises(CameraError, match=r"no \.jpg"):
        FileSource(tmp_path).start()
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    np.save(tmp_path / "bad.npy", np.zeros((4, 4), np.float32))
    source = FileSource(tmp_path)
    source.start()
    with pytest.raises(CameraError, match="none of the images"):
        source.capture_array()


def test_factory_builds_each_kind_and_refuses_unknown(tmp_path: Path) -> None:
    """Config names map to sources; "none" means no camera; typos are named with the choices."""
    synthetic = make_source_factory("synthetic", size_px=512)
    assert synthetic is not None
    assert synthetic().name == "synthetic"
    files = make_source_factory("files", folder=tmp_path)
    assert files is not None
    assert isinstance(files(), FileSource)
    picamera = make_source_factory("picamera2", camera_num=1)
    assert picamera is not None
    assert picamera().name == "picamera2"  # built lazily: picamera2 is imported only on start
    assert make_source_factory("none") is None
    with pytest.raises(ValueError, match="folder"):
        make_source_factory("files")
    with pytest.raises(ValueError, match=r"synthetic.*'webcam'"):
        make_source_factory("webcam")


def test_picamera2_missing_is_a_clear_camera_error() -> None:
    """Without picamera2 installed, starting the real camera says how to install it."""
    factory = make_source_factory("picamera2")
    assert factory is not None
    with pytest.raises(CameraError, match="python3-picamera2"):
        factory().start()
