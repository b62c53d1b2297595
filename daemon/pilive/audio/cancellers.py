"""The echo cancellers the microphone path can use, behind one small interface.

A `FrameProcessor` takes one 10 ms frame of 16 kHz mono from the microphone (near) and what the
speaker played at the same moment (far) and returns the microphone's frame with the speaker's echo
removed, and, when asked, noise suppressed and gain adjusted. Two libraries do this; which one is
the default was chosen by measurement (`python -m tests.bench --only aec`, the `benches.aec`
table), not by name:

- "webrtc": WebRTC's audio processing module (AEC3, the noise suppressor and AGC2) through the
  pywebrtc-audio binding: wheels for x86-64 and aarch64, about 1 MB, no threads of its own.
  On the simulated room (RT60 300 ms, 40 ms device latency) it removes about 40 dB of echo within
  the first second, and it suppresses the residual echo from the first frame.
- "speex": speexdsp's MDF echo canceller and preprocessor (Debian's libspeexdsp) through
  pilive's own C extension. Builds everywhere Debian does (32-bit Raspberry Pi OS included, where
  PyPI has no WebRTC wheel), but it adapts over seconds, and until then the echo passes.

Libraries load lazily: a missing one is a `CancellerUnavailable` that says why, so `pilive check`
and the daemon can fall back instead of failing.
"""

from __future__ import annotations

import importlib
import types
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pilive.audio.echo_mode import CANCELLERS, LIBRARIES, CancellerName
from pilive.live.wire import INPUT_AUDIO_RATE_HZ

RATE_HZ = INPUT_AUDIO_RATE_HZ
FRAME_MS = 10  # both libraries work on 10 ms frames
FRAME_SAMPLES = RATE_HZ * FRAME_MS // 1000
# speexdsp's adaptive filter must span the device latency plus the room's reverberation that
# matters; longer filters adapt more slowly (measured: 200 ms did best on the simulated room).
SPEEX_FILTER_MS = 200

Frame = npt.NDArray[np.int16]


class CancellerUnavailable(Exception):
    """The library of a canceller cannot be loaded here; the message says why."""


class FrameProcessor(Protocol):
    """One 10 ms frame at a time, in order, from one thread."""

    name: str
    description: str

    def process(self, near: Frame, far: Frame) -> Frame: ...


class WebRtcProcessor:
    """WebRTC's APM: AEC3 (when `cancel`), then the noise suppressor and AGC2 when asked."""

    name = "webrtc"

    def __init__(self, *, cancel: bool, noise_suppression: bool, auto_gain: bool) -> None:
        module = _import("webrtc")
        self._apm = module.AudioProcessor(
            sample_rate=RATE_HZ,
            echo_cancellation=cancel,
            noise_suppression=noise_suppression,
            auto_gain_control=auto_gain,
        )
        self._cancel = cancel
        parts = ["AEC3"] if cancel else []
        parts += ["noise suppression"] if noise_suppression else []
        parts += ["AGC2"] if auto_gain else []
        self.description = f"WebRTC {', '.join(parts)}"

    def process(self, near: Frame, far: Frame) -> Frame:
        out: Frame = self._apm.process(near, far if self._cancel else None)
        return out


class SpeexProcessor:
    """speexdsp: the MDF filter (when `cancel`), then the preprocessor (residual echo
    suppression, and noise suppression and AGC when asked)."""

    name = "speex"

    def __init__(self, *, cancel: bool, noise_suppression: bool, auto_gain: bool) -> None:
        module = _import("speex")
        self._state = module.EchoCanceller(
            FRAME_SAMPLES,
            RATE_HZ * SPEEX_FILTER_MS // 1000,
            RATE_HZ,
            cancel=cancel,
            denoise=noise_suppression,
            agc=auto_gain,
        )
        self._out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        parts = [f"echo canceller ({SPEEX_FILTER_MS} ms filter)"] if cancel else []
        parts += ["noise suppression"] if noise_suppression else []
        parts += ["AGC"] if auto_gain else []
        self.description = f"speexdsp {', '.join(parts) or 'preprocessor'}"

    def process(self, near: Frame, far: Frame) -> Frame:
        self._state.process(near, far, self._out)
        return self._out.copy()


def open_processor(
    name: CancellerName,
    *,
    cancel: bool = True,
    noise_suppression: bool = False,
    auto_gain: bool = False,
) -> FrameProcessor:
    """The named library's processor; CancellerUnavailable when it cannot load here."""
    if name == "webrtc":
        return WebRtcProcessor(
            cancel=cancel, noise_suppression=noise_suppression, auto_gain=auto_gain
        )
    if name == "speex":
        return SpeexProcessor(
            cancel=cancel, noise_suppression=noise_suppression, auto_gain=auto_gain
        )
    raise ValueError(f"unknown canceller {name!r}; choose one of {', '.join(CANCELLERS)}")


def unavailable_reason(name: CancellerName) -> str | None:
    """Why the named canceller cannot run here, or None when it can (for `pilive check`)."""
    try:
        open_processor(name)
    except CancellerUnavailable as exc:
        return str(exc)
    return None


def _import(name: CancellerName) -> types.ModuleType:
    """Imports a canceller's library; a failure names what to install."""
    module, why = LIBRARIES[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise CancellerUnavailable(f"{why}: {exc}") from exc
