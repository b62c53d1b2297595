"""The parrot's voice and eyes: a tone, resampled user audio, image sizes without decoding.

Pure functions of their inputs so a test can compute the exact bytes the emulator should send.
"""

from __future__ import annotations

import struct

import numpy as np
import soxr

OUTPUT_RATE_HZ = 24000
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_RATE_HZ}"
_TONE_PEAK = 0.25  # of full scale: audible, never clipping when followed by speech


def tone_pcm(duration_ms: int, freq_hz: float, rate_hz: int = OUTPUT_RATE_HZ) -> bytes:
    """A sine tone (s16le mono) with 5 ms fades so it does not click."""
    count = rate_hz * duration_ms // 1000
    t = np.arange(count, dtype=np.float64) / rate_hz
    wave = np.sin(2 * np.pi * freq_hz * t) * _TONE_PEAK
    fade = min(count // 2, rate_hz * 5 // 1000)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[count - fade :] *= ramp[::-1]
    return bytes((wave * 32767).astype("<i2").tobytes())


def parrot_pcm(pcm: bytes, rate_hz: int) -> bytes:
    """The user's s16le audio resampled to the 24 kHz the service speaks (soxr, deterministic)."""
    usable = len(pcm) - len(pcm) % 2
    if usable == 0:
        return b""
    samples = np.frombuffer(pcm[:usable], dtype="<i2")
    if rate_hz == OUTPUT_RATE_HZ:
        return bytes(samples.tobytes())
    out = soxr.resample(samples, rate_hz, OUTPUT_RATE_HZ)
    return bytes(np.asarray(out, dtype="<i2").tobytes())


def pcm_seconds(byte_count: int, rate_hz: int) -> float:
    return byte_count / 2 / rate_hz


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG SOF marker or a PNG IHDR; None when neither is found."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan before any SOF: not a valid JPEG
            return None
        pos += 2 + length
    return None
