"""Camera costs: ms per frame for each stage, and CPU share while streaming at 1 frame/s.

Run: `python -m tests.bench.bench_camera [seconds]` (default 10 s for the CPU-share run).
Each figure is printed beside an alternative measured in the same run:
- synthetic capture + crop/scale + encode at 768x768, against encode alone;
- JPEG encode with simplejpeg, against Pillow (the fallback where simplejpeg has no wheel);
- area scaling of a 1280x960 (and a 2592x1944) frame, against nearest-neighbour index picking;
- CPU share (process CPU time / wall time) of a loop streaming at 1 fps, against the same loop
  with the camera off; with the p99 lateness of a 20 ms audio-like task in each.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from pilive.camera import CameraMode, CameraStreamer, SyntheticSource, make_source_factory
from pilive.camera.imaging import (
    centre_square,
    encode_jpeg,
    frame_to_jpeg,
    jpeg_codec,
    to_square,
)


def per_call_ms(call: Callable[[], object], repeats: int = 40) -> tuple[float, float]:
    """Median and p95 wall time of `call` in ms, after one warm-up call."""
    call()
    samples: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def nearest_square(frame: np.ndarray, size_px: int) -> np.ndarray:
    """The cheap alternative: centre-crop, then pick every (side/size)-th pixel."""
    square = centre_square(frame)
    index = (np.arange(size_px) * square.shape[0]) // size_px
    return np.ascontiguousarray(square[index][:, index])


async def stream_for(seconds: float, mode: CameraMode) -> tuple[float, float, int]:
    """CPU share and 20 ms-task p99 lateness (ms) over `seconds`; frames sent."""
    frames: list[int] = []
    streamer = CameraStreamer(
        make_source_factory("synthetic"),
        on_frame=lambda jpeg: frames.append(len(jpeg)),
        mode=mode,
    )
    task = asyncio.create_task(streamer.run())
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.5)  # let the source open (not part of the steady state)
    streamer.connected_changed(True)
    late_s: list[float] = []
    cpu0, wall0 = time.process_time(), time.monotonic()
    due = loop.time() + 0.02
    while time.monotonic() - wall0 < seconds:
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        late_s.append(now - due)
        due = max(due + 0.02, now)
    cpu_share = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):  # we cancelled it ourselves
        await task
    late_s.sort()
    return cpu_share, late_s[int(len(late_s) * 0.99)] * 1000.0, len(frames)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 10.0
    rng = np.random.default_rng(0)
    vga4x3 = rng.integers(0, 256, (960, 1280, 3), dtype=np.uint8)
    five_mp = rng.integers(0, 256, (1944, 2592, 3), dtype=np.uint8)
    synthetic = SyntheticSource(768, 768)
    synthetic.start()
    frame768 = synthetic.capture_array()

    figures: dict[str, float] = {}
    figures["synthetic_capture_encode_ms"], figures["synthetic_capture_encode_p95_ms"] = (
        per_call_ms(lambda: frame_to_jpeg(synthetic.capture_array(), 768, 80))
    )
    figures["encode_only_768_ms"], _ = per_call_ms(lambda: encode_jpeg(frame768, 80))
    for name in ("simplejpeg", "pillow"):
        try:
            codec = jpeg_codec(name)
        except ImportError:
            continue  # not installed here: its rows say n/a
        figures[f"encode_768_{name}_ms"], _ = per_call_ms(
            lambda c=codec: encode_jpeg(frame768, 80, c)
        )
        figures[f"jpeg_768_{name}_bytes"] = float(len(encode_jpeg(frame768, 80, codec)))
    figures["synthetic_capture_only_ms"], _ = per_call_ms(synthetic.capture_array)
    figures["area_scale_1280x960_ms"], _ = per_call_ms(lambda: to_square(vga4x3, 768))
    figures["nearest_scale_1280x960_ms"], _ = per_call_ms(lambda: nearest_square(vga4x3, 768))
    figures["area_scale_2592x1944_ms"], _ = per_call_ms(lambda: to_square(five_mp, 768), 15)
    figures["nearest_scale_2592x1944_ms"], _ = per_call_ms(lambda: nearest_square(five_mp, 768), 15)
    figures["jpeg_768_bytes"] = float(len(frame_to_jpeg(frame768, 768, 80)))

    on = asyncio.run(stream_for(seconds, CameraMode.CONTINUOUS))
    off = asyncio.run(stream_for(seconds / 2, CameraMode.OFF))
    figures["cpu_share_1fps_pct"], figures["audio_task_p99_late_1fps_ms"] = on[0] * 100, on[1]
    figures["frames_sent_1fps"] = float(on[2])
    figures["cpu_share_camera_off_pct"], figures["audio_task_p99_late_off_ms"] = (
        off[0] * 100,
        off[1],
    )

    rows = [
        ("synthetic capture+scale+encode 768 (median)", "synthetic_capture_encode_ms", "ms"),
        ("  same, p95", "synthetic_capture_encode_p95_ms", "ms"),
        ("  beside it: encode only 768", "encode_only_768_ms", "ms"),
        ("  beside it: synthetic capture only", "synthetic_capture_only_ms", "ms"),
        ("crop+scale 1280x960 -> 768, area", "area_scale_1280x960_ms", "ms"),
        ("  beside it: nearest-neighbour", "nearest_scale_1280x960_ms", "ms"),
        ("crop+scale 2592x1944 -> 768, area", "area_scale_2592x1944_ms", "ms"),
        ("  beside it: nearest-neighbour", "nearest_scale_2592x1944_ms", "ms"),
        ("JPEG size, synthetic 768 q80", "jpeg_768_bytes", "B"),
        ("encode 768 q80, simplejpeg", "encode_768_simplejpeg_ms", "ms"),
        ("  beside it: Pillow (fallback)", "encode_768_pillow_ms", "ms"),
        ("JPEG size 768 q80, simplejpeg", "jpeg_768_simplejpeg_bytes", "B"),
        ("  beside it: Pillow (fallback)", "jpeg_768_pillow_bytes", "B"),
        (f"CPU share streaming 1 fps ({seconds:g} s)", "cpu_share_1fps_pct", "%"),
        ("  beside it: camera off", "cpu_share_camera_off_pct", "%"),
        ("20 ms task p99 lateness, streaming", "audio_task_p99_late_1fps_ms", "ms"),
        ("  beside it: camera off", "audio_task_p99_late_off_ms", "ms"),
        ("frames sent while streaming", "frames_sent_1fps", ""),
    ]
    print(f"{'camera benchmark':48s} {'value':>10s}")
    for label, key, unit in rows:
        value = f"{figures[key]:10.2f}" if key in figures else f"{'n/a':>10s}"
        print(f"{label:48s} {value} {unit}")
    return figures


if __name__ == "__main__":
    main()
