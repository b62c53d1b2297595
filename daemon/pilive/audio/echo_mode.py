"""Which echo mode the microphone runs in, and why: the decision alone, without loading audio.

`pilive check` says this without importing numpy or a DSP library (it stays light), and the daemon
makes the same decision in `echo.plan_echo`, then loads the library it names. See audio/echo.py
for what each mode does.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

EchoMode = Literal["auto", "cancel", "half-duplex", "off"]
ActiveMode = Literal["cancel", "half-duplex", "off"]
CancellerName = Literal["webrtc", "speex"]
CANCELLERS: tuple[CancellerName, ...] = ("webrtc", "speex")
# Where each canceller's library comes from: the module imported, and what to install.
LIBRARIES: dict[CancellerName, tuple[str, str]] = {
    "webrtc": (
        "pywebrtc_audio",
        "the Python package pywebrtc-audio is not installed (pip install pywebrtc-audio)",
    ),
    "speex": (
        "pilive.audio._speexdsp",
        "pilive's speexdsp extension was not built (install libspeexdsp-dev, then reinstall "
        "pilive)",
    ),
}
FALLBACK = "no canceller"  # how a half-duplex fallback's reason starts


@dataclass(frozen=True, slots=True)
class EchoSettings:
    """`[audio.echo]` in the daemon's words."""

    mode: EchoMode = "auto"
    canceller: CancellerName = "webrtc"
    noise_suppression: bool = False
    auto_gain: bool = False
    tail_ms: int = 300


def resolve_mode(mode: EchoMode, *, hands_free: bool) -> tuple[ActiveMode, str]:
    """ "auto" made concrete: cancel in hands-free, off in push-to-talk; with the reason."""
    if mode != "auto":
        return mode, "configured"
    if hands_free:
        return "cancel", "hands-free"
    return "off", "push-to-talk: a press silences the speaker"


def missing_library(name: CancellerName) -> str | None:
    """Why the canceller's library is not installed here (None: it is), without importing it."""
    module, why = LIBRARIES[name]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else why


def fallback_reason(name: str, why: str) -> str:
    return f"{FALLBACK}: {name} cannot run here: {why}"


def describe(mode: ActiveMode, why: str) -> str:
    text = f"echo {mode} ({why})"
    if mode == "half-duplex":
        text += ": the microphone is muted while the speaker plays"
    return text


def expected(settings: EchoSettings, *, hands_free: bool) -> str:
    """What `pilive run` will do, for `pilive check` (a library that is installed but fails to
    load still shows in the daemon's STATUS)."""
    mode, why = resolve_mode(settings.mode, hands_free=hands_free)
    if mode == "cancel":
        missing = missing_library(settings.canceller)
        if missing is not None:
            return describe("half-duplex", fallback_reason(settings.canceller, missing))
        why = f"{why}; {settings.canceller} canceller"
    return describe(mode, why)
