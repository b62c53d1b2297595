"""`pilive camera`: saves what the daemon would send, and names bad arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import simplejpeg

from pilive.camera import cli
from tests.support.camera_rig import solid_array


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return parser.parse_args(list(argv))


def test_saves_square_jpegs_from_the_synthetic_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two synthetic frames become two 512x512 JPEG files, each reported with its timings."""
    args = parse("--source", "synthetic", "--count", "2", "--interval", "0", "--size", "512")
    args.out = str(tmp_path)
    assert cli.run(args) == 0
    files = sorted(tmp_path.glob("frame-*.jpg"))
    assert [f.name for f in files] == ["frame-00.jpg", "frame-01.jpg"]
    for path in files:
        assert simplejpeg.decode_jpeg_header(path.read_bytes())[:2] == (512, 512)
    assert capsys.readouterr().out.count("scale+encode") == 2


def test_files_source_is_cropped_to_a_square(tmp_path: Path) -> None:
    """A 640x480 JPEG from an image folder comes out 768x768."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(simplejpeg.encode_jpeg(solid_array((10, 200, 10), 480, 640), 90))
    args = parse(
        "--source", "files", "--folder", str(images), "--count", "1", "--out", str(tmp_path)
    )
    assert cli.run(args) == 0
    assert simplejpeg.decode_jpeg_header((tmp_path / "frame-00.jpg").read_bytes())[:2] == (
        768,
        768,
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--source", "webcam"), "'webcam'"),
        (("--source", "none"), "no frames"),
        (("--source", "files"), "folder"),
        (("--source", "synthetic", "--count", "0"), "--count"),
        (("--source", "synthetic", "--out", "/nonexistent/dir"), "not a directory"),
    ],
)
def test_bad_arguments_are_named(
    argv: tuple[str, ...], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad argument gives exit status 2 and a message naming it."""
    assert cli.run(parse(*argv)) == 2
    assert words in capsys.readouterr().err


def test_a_camera_that_cannot_start_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without picamera2 (as here) the real camera fails clearly with exit status 1."""
    assert cli.run(parse("--source", "picamera2", "--out", str(tmp_path))) == 1
    assert "python3-picamera2" in capsys.readouterr().err
