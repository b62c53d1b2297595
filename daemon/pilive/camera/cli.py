"""`pilive camera`: take a few frames through the real pipeline and save them, for bring-up.

Saves exactly what the daemon would send (square JPEGs) so a person can look at the framing,
colour order and exposure, and prints how long each frame took.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="picamera2",
        help="picamera2 (default), synthetic or files",
    )
    parser.add_argument("--folder", help="image folder for --source files")
    parser.add_argument("--count", type=int, default=3, help="frames to take (default 3)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between frames")
    parser.add_argument("--size", type=int, default=768, help="square side in pixels (768)")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality 1..100 (80)")
    parser.add_argument("--camera-num", type=int, default=0, help="picamera2 camera index")
    parser.add_argument("--out", default=".", help="folder for frame-NN.jpg (default: here)")


def run(args: argparse.Namespace) -> int:
    from pilive.camera.base import CameraError  # noqa: PLC0415
    from pilive.camera.imaging import FrameError, frame_to_jpeg  # noqa: PLC0415 (keep CLI light)
    from pilive.camera.sources import make_source_factory  # noqa: PLC0415

    out = Path(args.out)
    if not out.is_dir():
        print(f"pilive camera: --out {str(out)!r} is not a directory", file=sys.stderr)
        return 2
    if args.count < 1:
        print(f"pilive camera: --count must be at least 1, got {args.count}", file=sys.stderr)
        return 2
    try:
        factory = make_source_factory(
            args.source, size_px=args.size, folder=args.folder, camera_num=args.camera_num
        )
    except ValueError as exc:
        print(f"pilive camera: {exc}", file=sys.stderr)
        return 2
    if factory is None:
        print("pilive camera: source 'none' has no frames to take", file=sys.stderr)
        return 2
    source = factory()
    try:
        source.start()
        for n in range(args.count):
            if n:
                time.sleep(args.interval)
            started = time.perf_counter()
            frame = source.capture_array()
            captured = time.perf_counter()
            jpeg = frame_to_jpeg(frame, args.size, args.quality)
            done = time.perf_counter()
            path = out / f"frame-{n:02d}.jpg"
            path.write_bytes(jpeg)
            print(
                f"{path}: {frame.width_px}x{frame.height_px} -> {args.size}x{args.size}, "
                f"{len(jpeg)} bytes, capture {(captured - started) * 1000:.1f} ms, "
                f"scale+encode {(done - captured) * 1000:.1f} ms"
            )
    except (CameraError, FrameError, OSError) as exc:
        print(f"pilive camera: {source.name}: {exc}", file=sys.stderr)
        return 1
    finally:
        source.close()
    return 0
