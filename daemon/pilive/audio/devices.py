"""`pilive devices`: the devices PortAudio sees, the rates they accept, and what a name picks.

Device names in the config are matched the same way here as in the daemon (`find_device`), so
what this prints marked with `*` is exactly what `pilive run` would open.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pilive.audio.backends import AudioBackend, Direction

PROBE_RATES_HZ = (8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        metavar="NAME",
        default="default",
        help='microphone name to resolve: "default" or part of a device name (default: default)',
    )
    parser.add_argument(
        "--output",
        metavar="NAME",
        default="default",
        help='speaker name to resolve: "default" or part of a device name (default: default)',
    )


def run(args: argparse.Namespace) -> int:
    from pilive.audio.backends.portaudio import PyAudioBackend  # noqa: PLC0415 - hardware binding

    try:
        backend = PyAudioBackend()
    except (ImportError, OSError) as exc:
        print(f"pilive devices: cannot start PortAudio: {exc}", file=sys.stderr)
        return 1
    try:
        return report(backend, args.input, args.output, sys.stdout)
    finally:
        backend.close()


def report(backend: AudioBackend, input_name: str, output_name: str, out: TextIO) -> int:
    """Prints the device table; returns 1 when a name matches no device (the error says which)."""
    from pilive.audio.backends import (  # noqa: PLC0415 - keeps `pilive --help` light
        AudioDeviceError,
        choose_format,
        find_device,
    )
    from pilive.audio.capture import RATE_HZ as CAPTURE_RATE_HZ  # noqa: PLC0415
    from pilive.audio.playback import RATE_HZ as PLAYBACK_RATE_HZ  # noqa: PLC0415

    audio = backend
    status = 0
    jobs: tuple[tuple[Direction, str, int], ...] = (
        ("input", input_name, CAPTURE_RATE_HZ),
        ("output", output_name, PLAYBACK_RATE_HZ),
    )
    for d, name, wanted_hz in jobs:
        direction = d
        print(f"{direction} devices (--{direction} {name!r}):", file=out)
        try:
            chosen = find_device(audio, name, d)
        except AudioDeviceError as exc:
            chosen = None
            status = 1
            print(f"  ! {exc}", file=out)
        for device in audio.devices():
            channels = device.channels(d)
            if channels == 0:
                continue
            rates = [r for r in PROBE_RATES_HZ if audio.is_supported(device, d, r, 1)]
            rates_text = ", ".join(str(r) for r in rates) or "no mono rate"
            mark = "*" if chosen is not None and device.index == chosen.index else " "
            print(f"  {mark} {device.name}  ({channels} ch; Hz: {rates_text})", file=out)
            if mark == "*":
                try:
                    rate_hz, ch = choose_format(audio, device, d, wanted_hz)
                    how = "as is" if (rate_hz, ch) == (wanted_hz, 1) else "resampled in pilive"
                    print(f"      opens at {rate_hz} Hz, {ch} ch ({how})", file=out)
                except AudioDeviceError as exc:
                    status = 1
                    print(f"      ! {exc}", file=out)
    return status
