"""Camera costs: CPU per frame for each encoder, memory for each, and CPU share at 1 frame/s.

Run: `python -m tests.bench.bench_camera [seconds]` (default 10 s for each CPU-share run).
Each figure is printed beside an alternative measured in the same run:
- CPU per frame (process time, median of 40, the calls taking turns) for the two ways a frame
  becomes a 768x768 JPEG: Pillow (crop, BOX area scale and encode; what a daemon without numpy
  uses) and simplejpeg (encode a frame that needs no scaling, where numpy is loaded anyway: the
  Pi camera), for a 768x768 frame as it is and for 1280x960 and 2592x1944 frames that need
  cropping and scaling (the synthetic pattern at each size, RGBX as that source makes it: a
  smooth picture, as a camera's mostly is; simplejpeg's rows for those have Pillow scale
  first).
  Beside those, the numpy area filter with simplejpeg that the camera used before Pillow did
  (`PreviousAreaScaler` below, kept here only as the alternative);
- scaling alone 1280x960 -> 768: Pillow BOX, beside the numpy area filter and nearest-neighbour;
- memory: RSS of a fresh interpreter with `pilive.app` imported, then with each encoder's
  libraries imported, then after 30 synthetic frames encoded (each in its own interpreter);
- CPU share (process CPU time / wall time) of a loop streaming the synthetic camera at 1 fps
  with each encoder, against the same loop with the camera off; with the p99 lateness of a
  20 ms audio-like task in each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image

from pilive.camera import CameraMode, CameraStreamer, SyntheticSource, imaging, make_source_factory
from pilive.camera.imaging import Frame, frame_to_jpeg, jpeg_codec

Array = npt.NDArray[np.uint8]
ENCODERS = ("pillow", "simplejpeg")


def interleaved_cpu_ms(
    calls: dict[str, Callable[[], object]], rounds: int = 40
) -> dict[str, float]:
    """Median process CPU time of each call in ms, the calls taking turns round by round (on a
    shared machine, load then falls on all of them alike); one warm-up round first."""
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.process_time()
            call()
            samples[name].append((time.process_time() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in samples.items()}


class PreviousAreaScaler:
    """The camera's scaler before Pillow took over, kept here only as the alternative: centre
    crop, then output pixel i the mean of input pixels floor(i*s/n) .. floor((i+1)*s/n) - 1 per
    axis, rows gathered and added, columns by np.add.reduceat (downscaling only)."""

    def __init__(self, side_in: int, side_out: int) -> None:
        starts = (np.arange(side_out, dtype=np.intp) * side_in) // side_out
        widths = np.diff(np.append(starts, side_in))
        self.starts = starts
        self.extra_rows = [
            (np.flatnonzero(widths > t), starts[widths > t] + t)
            for t in range(1, int(widths.max()))
        ]
        area = np.outer(widths, widths).astype(np.float32)
        self.inverse_area = (1.0 / area)[:, :, np.newaxis]
        big = int(widths.max()) ** 2 * 255 > np.iinfo(np.uint16).max
        self.sum_type = np.uint32 if big else np.uint16
        self.side_out = side_out

    def square(self, frame: Array) -> Array:
        height, width = frame.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = frame[top : top + side, left : left + side]
        rows = square[self.starts].astype(self.sum_type)
        for bins, source_rows in self.extra_rows:
            rows[bins] += square[source_rows]
        means = np.add.reduceat(rows, self.starts, axis=1) * self.inverse_area
        np.add(means, 0.5, out=means)
        out: Array = np.empty((self.side_out, self.side_out, 3), dtype=np.uint8)
        out[...] = means
        return out

    def jpeg(self, frame: Array, quality: int = 80) -> bytes:
        data: bytes = simplejpeg.encode_jpeg(
            self.square(frame), quality=quality, colorspace="RGB", colorsubsampling="420"
        )
        return data


def nearest_square(frame: Frame, size_px: int) -> Image.Image:
    """The cheap alternative to area scaling: centre-crop, then Pillow's nearest neighbour."""
    left, top, side = imaging.centre_square(frame.width_px, frame.height_px)
    mode = "RGBX" if frame.channels == 4 else "RGB"
    size = (frame.width_px, frame.height_px)
    image = Image.frombuffer(mode, size, frame.data, "raw", mode, 0, 1)
    return image.resize(
        (size_px, size_px), Image.Resampling.NEAREST, (left, top, left + side, top + side)
    )


@contextlib.contextmanager
def encoder_for_768(name: str) -> Iterator[None]:
    """Let the streamer's own codec choice pick `name` for its 768x768 frames: simplejpeg is
    chosen where numpy is loaded, Pillow where it is not (this process has numpy either way)."""
    original = imaging.numpy_is_loaded
    imaging.numpy_is_loaded = lambda: name == "simplejpeg"
    try:
        yield
    finally:
        imaging.numpy_is_loaded = original


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


# A fresh interpreter with the daemon's malloc setting (pilive.memory.bound_malloc, as `pilive
# run` starts): RSS after `import pilive.app`, after the encoder's libraries, and after 30
# synthetic frames of WIDTH x HEIGHT through frame_to_jpeg with that encoder.
RSS_SCRIPT = """
import json, re, sys
def rss_mb():
    status = open('/proc/self/status').read()
    return int(re.search(r'VmRSS:\\s+(\\d+)', status).group(1)) / 1024
from pilive.memory import bound_malloc
bound_malloc()
import pilive.app
from pilive.camera.imaging import frame_to_jpeg, jpeg_codec
from pilive.camera.sources import SyntheticSource
app_mb = rss_mb()
codec = jpeg_codec(sys.argv[1])
source = SyntheticSource(int(sys.argv[2]), int(sys.argv[3]))
source.start()
imported_mb = rss_mb()
for _ in range(30):
    frame_to_jpeg(source.capture_array(), 768, 80, codec)
print(json.dumps({"app_mb": app_mb, "imported_mb": imported_mb, "after_mb": rss_mb(),
                  "numpy": "numpy" in sys.modules}))
"""


def rss_for(name: str, width_px: int, height_px: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, name, str(width_px), str(height_px)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 10.0
    synthetic = SyntheticSource(768, 768)
    synthetic.start()
    frame768 = synthetic.capture_array()
    frames = {"768": frame768}
    arrays: dict[str, Array] = {}
    for width, height in ((1280, 960), (2592, 1944)):  # a camera's 4:3 modes, same pattern
        source = SyntheticSource(width, height)
        source.start()
        frame = source.capture_array()
        frames[f"{width}x{height}"] = frame
        rgbx = np.frombuffer(frame.data, np.uint8).reshape(height, width, frame.channels)
        arrays[f"{width}x{height}"] = np.ascontiguousarray(rgbx[:, :, :3])  # RGB, as before

    figures: dict[str, float] = {}
    calls: dict[str, Callable[[], object]] = {"synthetic_capture_only": synthetic.capture_array}
    for name in ENCODERS:
        codec = jpeg_codec(name)
        for size, frame in frames.items():
            calls[f"{name}_{size}"] = lambda c=codec, f=frame: frame_to_jpeg(f, 768, 80, c)
        figures[f"{name}_768_bytes"] = float(len(frame_to_jpeg(frame768, 768, 80, codec)))
    for size, array in arrays.items():
        previous = PreviousAreaScaler(min(array.shape[:2]), 768)
        calls[f"numpy_area_simplejpeg_{size}"] = lambda p=previous, a=array: p.jpeg(a)
        if size == "1280x960":
            calls["scale_1280x960_numpy_area"] = lambda p=previous, a=array: p.square(a)
    vga = frames["1280x960"]
    pillow: Any = jpeg_codec("pillow")  # its square_image: the crop and scale, no encode
    calls["scale_1280x960_pillow_box"] = lambda: pillow.square_image(vga, 768)
    calls["scale_1280x960_nearest"] = lambda: nearest_square(vga, 768)
    for key, cpu_ms in interleaved_cpu_ms(calls).items():
        figures[f"{key}_cpu_ms"] = cpu_ms

    for name in ENCODERS:
        for size, (width, height) in {"768": (768, 768), "1280x960": (1280, 960)}.items():
            if name == "simplejpeg" and size != "768":
                continue  # simplejpeg is only chosen for frames that need no scaling
            rss = rss_for(name, width, height)
            figures["rss_app_mb"] = rss["app_mb"]
            figures[f"rss_{name}_{size}_imported_mb"] = rss["imported_mb"]
            figures[f"rss_{name}_{size}_after_mb"] = rss["after_mb"]
            figures[f"rss_{name}_{size}_numpy"] = float(rss["numpy"])

    for name in ENCODERS:
        with encoder_for_768(name):
            share, late_ms, sent = asyncio.run(stream_for(seconds, CameraMode.CONTINUOUS))
        figures[f"cpu_share_1fps_{name}_pct"] = share * 100
        figures[f"audio_task_p99_late_1fps_{name}_ms"] = late_ms
        figures[f"frames_sent_1fps_{name}"] = float(sent)
    off = asyncio.run(stream_for(seconds / 2, CameraMode.OFF))
    figures["cpu_share_camera_off_pct"], figures["audio_task_p99_late_off_ms"] = (
        off[0] * 100,
        off[1],
    )

    rows = [
        ("synthetic capture only (CPU)", "synthetic_capture_only_cpu_ms", "ms"),
        ("768 as it is -> JPEG q80, Pillow (CPU)", "pillow_768_cpu_ms", "ms"),
        ("  beside it: simplejpeg", "simplejpeg_768_cpu_ms", "ms"),
        ("1280x960 -> 768 JPEG, Pillow crop+BOX+encode", "pillow_1280x960_cpu_ms", "ms"),
        ("  beside it: Pillow scale, simplejpeg encode", "simplejpeg_1280x960_cpu_ms", "ms"),
        (
            "  beside it: numpy area + simplejpeg (before)",
            "numpy_area_simplejpeg_1280x960_cpu_ms",
            "ms",
        ),
        ("2592x1944 -> 768 JPEG, Pillow crop+BOX+encode", "pillow_2592x1944_cpu_ms", "ms"),
        ("  beside it: Pillow scale, simplejpeg encode", "simplejpeg_2592x1944_cpu_ms", "ms"),
        (
            "  beside it: numpy area + simplejpeg (before)",
            "numpy_area_simplejpeg_2592x1944_cpu_ms",
            "ms",
        ),
        ("scale only 1280x960 -> 768, Pillow BOX", "scale_1280x960_pillow_box_cpu_ms", "ms"),
        ("  beside it: numpy area (before)", "scale_1280x960_numpy_area_cpu_ms", "ms"),
        ("  beside it: nearest-neighbour", "scale_1280x960_nearest_cpu_ms", "ms"),
        ("JPEG size, synthetic 768 q80, Pillow", "pillow_768_bytes", "B"),
        ("  beside it: simplejpeg", "simplejpeg_768_bytes", "B"),
        ("RSS, import pilive.app", "rss_app_mb", "MB"),
        ("  + Pillow imported", "rss_pillow_768_imported_mb", "MB"),
        ("  + 30 frames 768, Pillow", "rss_pillow_768_after_mb", "MB"),
        ("  + 30 frames 1280x960, Pillow", "rss_pillow_1280x960_after_mb", "MB"),
        ("  beside it: + numpy and simplejpeg imported", "rss_simplejpeg_768_imported_mb", "MB"),
        ("  beside it: + 30 frames 768, simplejpeg", "rss_simplejpeg_768_after_mb", "MB"),
        (f"CPU share streaming 1 fps, Pillow ({seconds:g} s)", "cpu_share_1fps_pillow_pct", "%"),
        ("  beside it: simplejpeg", "cpu_share_1fps_simplejpeg_pct", "%"),
        ("  beside it: camera off", "cpu_share_camera_off_pct", "%"),
        ("20 ms task p99 lateness, streaming, Pillow", "audio_task_p99_late_1fps_pillow_ms", "ms"),
        ("  beside it: simplejpeg", "audio_task_p99_late_1fps_simplejpeg_ms", "ms"),
        ("  beside it: camera off", "audio_task_p99_late_off_ms", "ms"),
        ("frames sent while streaming, Pillow", "frames_sent_1fps_pillow", ""),
        ("  beside it: simplejpeg", "frames_sent_1fps_simplejpeg", ""),
    ]
    print(f"{'camera benchmark':52s} {'value':>10s}")
    for label, key, unit in rows:
        value = f"{figures[key]:10.2f}" if key in figures else f"{'n/a':>10s}"
        print(f"{label:52s} {value} {unit}")
    return figures


if __name__ == "__main__":
    main()
