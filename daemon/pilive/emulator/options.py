"""Emulator settings: one frozen dataclass, durations in the real service's seconds.

Every duration here is what the real service does; `time_scale` multiplies all of them (and the
reply pacing) so a test can live through a 10-minute connection in a few seconds. Durations the
emulator reports on the wire (goAway `timeLeft`) are scaled too, because a client must act on the
time it really has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODELS: tuple[str, ...] = (
    "gemini-2.5-flash-native-audio-preview-09-2025",
    "gemini-2.5-flash-native-audio-preview-12-2025",
    "gemini-2.5-flash-native-audio-latest",
    "gemini-live-2.5-flash-preview",
    "gemini-live-2.5-flash",
    "gemini-2.0-flash-live-001",
    "gemini-2.0-flash-live-preview-04-09",
    "gemini-2.0-flash-exp",
)


@dataclass(frozen=True)
class ToolTrigger:
    """When the model calls a function: deterministic, so a test can drive it.

    A user turn numbered N (1-based, counted over the whole session) triggers a call when N is in
    `turns` or N is a multiple of `every_n_turns` (0: never), and only if the client declared a
    function in setup. `function` picks the declared function by name (None: the first declared);
    `args` are sent as given, or (None) made up from the declared parameter schema.
    """

    turns: frozenset[int] = frozenset()
    every_n_turns: int = 0
    function: str | None = None
    args: Mapping[str, Any] | None = None

    def fires_on(self, turn_number: int) -> bool:
        if turn_number in self.turns:
            return True
        return self.every_n_turns > 0 and turn_number % self.every_n_turns == 0


@dataclass(frozen=True)
class EmulatorOptions:
    """How the emulator listens and behaves. All `*_s` durations are in real-service seconds."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "emulator-test-key"
    tls_cert: str | None = None
    tls_key: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    time_scale: float = 1.0
    log_frames: bool = False
    # Replies: a tone, then the user's audio resampled to 24 kHz, in chunks faster than real time.
    tone_ms: int = 150
    tone_hz: float = 880.0
    reply_chunk_ms: int = 40
    reply_speedup: float = 4.0
    reply_delay_s: float = 0.3
    tool_trigger: ToolTrigger = field(default_factory=ToolTrigger)
    # Limits of the real service (live-api-protocol.md section 5).
    connection_lifetime_s: float = 600.0
    go_away_lead_s: float = 50.0
    audio_session_limit_s: float = 900.0
    video_session_limit_s: float = 120.0
    handle_lifetime_s: float = 7200.0
    # A resume while the session's previous socket is still open is refused (1011) unless that
    # socket goes away within this grace period (the closing handshake races the new connect).
    resume_grace_s: float = 1.0
    # Hands-free voice activity detection defaults (used when the setup leaves them out).
    vad_threshold_dbfs: float = -45.0
    vad_prefix_padding_ms: int = 100
    vad_silence_ms: int = 800
    # A connection that never sends setup is closed after this long.
    setup_timeout_s: float = 30.0
    # websockets' server keepalive; None means the emulator never pings (clients do).
    ping_interval_s: float | None = None

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale!r}")
        if self.reply_speedup <= 0:
            raise ValueError(f"reply_speedup must be > 0, got {self.reply_speedup!r}")
        if self.reply_chunk_ms <= 0:
            raise ValueError(f"reply_chunk_ms must be > 0, got {self.reply_chunk_ms!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if not self.api_key:
            raise ValueError("api_key must not be empty")

    def scaled(self, seconds: float) -> float:
        """Real seconds the emulator waits for `seconds` of real-service time."""
        return seconds * self.time_scale

    def __repr__(self) -> str:
        # The key never appears in a repr (it ends up in logs and test reports).
        return (
            f"EmulatorOptions(host={self.host!r}, port={self.port!r}, api_key='***', "
            f"tls={self.tls_cert is not None}, time_scale={self.time_scale!r})"
        )
