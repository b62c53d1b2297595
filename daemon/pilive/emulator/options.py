"""Emulator settings: one frozen dataclass, durations in the real service's seconds.

Every duration here is what the real service does; `time_scale` multiplies all of them (and the
reply pacing) so a test can live through a 10-minute connection in a few seconds. Durations the
emulator reports on the wire (goAway `timeLeft`) are scaled too, because a client must act on the
time it really has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pilive.emulator.authtokens import TOKEN_EXPIRED
from pilive.emulator.sessions import HANDLE_REJECTED
from pilive.live.models import KNOWN_MODELS

# Every model in the table, retired ones included: those are listed so that the emulator refuses
# them the way the service does (1008 "models/X is not found ..."), like any unknown name.
DEFAULT_MODELS: tuple[str, ...] = tuple(model.name for model in KNOWN_MODELS)


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
    # The names served. Each follows its row in pilive.live.models; a retired row is refused even
    # when listed, and a name the table lacks follows the 2.5 native-audio preview's row.
    models: tuple[str, ...] = DEFAULT_MODELS
    time_scale: float = 1.0
    log_frames: bool = False
    # Replies: a tone, then the user's audio resampled to 24 kHz, in chunks faster than real time.
    tone_ms: int = 150
    tone_hz: float = 880.0
    reply_chunk_ms: int = 40
    # Audio time per wall time; below 1 the answer arrives slower than real time, as has been
    # seen on the service (livekit/agents#3604).
    reply_speedup: float = 4.0
    # Chunks sent back to back, then a pause as long as they last (bursts, livekit/agents#3604).
    reply_burst_chunks: int = 1
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
    # True: a resume finding the old socket stalled (not reading) drops it and takes over.
    # False: the old socket must close by itself within the grace period, else 1011, however long
    # it has been dead (sip-to-ai#14).
    resume_takeover: bool = True
    # The close an unknown or expired handle gets (code, reason); see sessions.py for what is
    # reported and what is inferred.
    handle_rejection: tuple[int, str] = (1008, HANDLE_REJECTED)
    # serverContent carries interactionStatus: IN_PROGRESS with model content, IDLE with
    # turnComplete (google-genai's receive loop stops at IDLE).
    interaction_status: bool = False
    # Hands-free voice activity detection defaults (used when the setup leaves them out).
    vad_threshold_dbfs: float = -45.0
    vad_prefix_padding_ms: int = 100
    vad_silence_ms: int = 800
    # A connection whose setup never completes (none sent, or one the model withholds) is closed
    # with 1011 after this long.
    setup_timeout_s: float = 30.0
    # websockets' server keepalive; None means the emulator never pings (clients do).
    ping_interval_s: float | None = None
    # Ephemeral tokens (see authtokens.py): serve POST /v1alpha/auth_tokens on a loopback port of
    # its own (`Emulator.rest_url`); whether a setup contradicting a locked field is refused
    # (1007) or the token's value silently wins; the close a connection gets when its token's
    # expireTime passes (the service "may preemptively close the session"; code and text are
    # inferred). Token times are wall-clock times and are not scaled by `time_scale`.
    auth_tokens_api: bool = False
    locked_field_conflict: Literal["refuse", "ignore"] = "refuse"
    token_expiry_close: tuple[int, str] = (1008, TOKEN_EXPIRED)

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale!r}")
        if not (math.isfinite(self.reply_speedup) and self.reply_speedup > 0):
            raise ValueError(
                f"reply_speedup must be a finite number > 0, got {self.reply_speedup!r}"
            )
        if isinstance(self.reply_burst_chunks, bool) or self.reply_burst_chunks < 1:
            raise ValueError(f"reply_burst_chunks must be >= 1, got {self.reply_burst_chunks!r}")
        code, reason = self.handle_rejection
        if not (1000 <= code <= 4999) or code in {1004, 1005, 1006, 1015}:
            raise ValueError(f"handle_rejection code {code} cannot be sent in a close frame")
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("handle_rejection reason must fit a close frame (123 bytes)")
        if self.locked_field_conflict not in ("refuse", "ignore"):
            conflict = self.locked_field_conflict
            raise ValueError(f"locked_field_conflict must be refuse or ignore, not {conflict!r}")
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
