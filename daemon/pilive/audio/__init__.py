"""Audio capture, playback and earcons; the C ring buffer lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pilive.audio.resample import PcmConverter


def converter(
    in_rate_hz: int,
    in_channels: int,
    out_rate_hz: int,
    out_channels: int = 1,
    *,
    steady: bool = False,
) -> PcmConverter | None:
    """A streaming converter between two s16le formats, or None when they are the same
    (`steady`: see PcmConverter).

    The one place the audio path loads numpy and soxr (about 13 MB): a microphone at 16 kHz mono
    and a speaker at 24 kHz mono never need them.
    """
    if (in_rate_hz, in_channels) == (out_rate_hz, out_channels):
        return None
    from pilive.audio.resample import PcmConverter  # noqa: PLC0415 - numpy only when resampling

    return PcmConverter(in_rate_hz, in_channels, out_rate_hz, out_channels, steady=steady)
