"""Which echo mode the microphone runs in, and why: the decision alone, without loading audio.

`pilive check` says this without importing numpy or a DSP library (it stays light), and the daemon
makes the same decision in `plan_echo`, which loads the library it names only when a canceller or
noise suppression is wanted: push-to-talk with the echo path off never loads numpy for it. See
audio/echo.py for what each mode does.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pilive.audio.cancellers import FrameProcessor

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


def resolve_mode(
    mode: EchoMode, *, hands_free: bool, wake_word: bool = False
) -> tuple[ActiveMode, str]:
    """ "auto" made concrete: cancel in hands-free or with a wake word (the microphone listens
    while the answer plays), off in push-to-talk; with the reason."""
    if mode != "auto":
        return mode, "configured"
    if hands_free:
        return "cancel", "hands-free"
    if wake_word:
        return "cancel", "wake word: heard over the answer"
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


def expected(settings: EchoSettings, *, hands_free: bool, wake_word: bool = False) -> str:
    """What `pilive run` will do, for `pilive check` (a library that is installed but fails to
    load still shows in the daemon's STATUS)."""
    mode, why = resolve_mode(settings.mode, hands_free=hands_free, wake_word=wake_word)
    if mode == "cancel":
        missing = missing_library(settings.canceller)
        if missing is not None:
            return describe("half-duplex", fallback_reason(settings.canceller, missing))
        why = f"{why}; {settings.canceller} canceller"
    return describe(mode, why)


@dataclass(frozen=True, slots=True)
class EchoPlan:
    """What the microphone path will do and why; `processor` runs the canceller and/or the
    noise suppression and gain (None: no library is used)."""

    mode: ActiveMode
    why: str
    processor: FrameProcessor | None = None
    tail_ms: int = 300

    @property
    def active(self) -> bool:
        """The microphone goes through the echo thread (a canceller, a gate, or NS/AGC)."""
        return self.mode != "off" or self.processor is not None

    @property
    def fallback(self) -> bool:
        """Half-duplex because the canceller asked for could not run: a fault worth showing."""
        return self.why.startswith(FALLBACK)

    def describe(self) -> str:
        return describe(self.mode, self.why)


def plan_echo(settings: EchoSettings, *, hands_free: bool, wake_word: bool = False) -> EchoPlan:
    """Resolves "auto", loads the libraries, and falls back to half-duplex when the canceller
    cannot load (see audio/echo.py). Never raises for a missing library."""
    mode, why = resolve_mode(settings.mode, hands_free=hands_free, wake_word=wake_word)
    extras = settings.noise_suppression or settings.auto_gain
    if mode != "cancel" and not extras:
        return EchoPlan(mode, why, None, settings.tail_ms)
    # The one place the echo path loads numpy and a DSP library: only for a canceller or NS/AGC.
    from pilive.audio.cancellers import CancellerUnavailable, open_processor  # noqa: PLC0415

    processor: FrameProcessor | None = None
    if mode == "cancel":
        try:
            processor = open_processor(
                settings.canceller,
                noise_suppression=settings.noise_suppression,
                auto_gain=settings.auto_gain,
            )
        except CancellerUnavailable as exc:
            return EchoPlan(
                "half-duplex", fallback_reason(settings.canceller, str(exc)), None, settings.tail_ms
            )
        return EchoPlan("cancel", f"{why}; {processor.description}", processor, settings.tail_ms)
    if extras:
        try:
            processor = open_processor(
                settings.canceller,
                cancel=False,
                noise_suppression=settings.noise_suppression,
                auto_gain=settings.auto_gain,
            )
            why = f"{why}; {processor.description}"
        except CancellerUnavailable as exc:
            why = f"{why}; no noise suppression or gain: {exc}"
    return EchoPlan(mode, why, processor, settings.tail_ms)
