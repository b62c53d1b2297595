"""Typed events out of the Live API core.

Server events are what `pilive.live.wire.parse_server_message` finds in a server frame; session
events (`TurnLost`, `ConversationReset`) are decisions `pilive.live.session.LiveSession` makes.
All are immutable value objects so they can be queued, compared in tests and logged without copying.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class LinkState(enum.Enum):
    """The link to the Live API as the daemon shows it: the one enum the link supervisor reports
    and the conversation reacts to. The value is the word STATUS= uses."""

    CONNECTING = "connecting"
    """Opening a connection (first start, or resuming at once after goAway / a normal close)."""
    CONNECTED = "connected"
    """`setupComplete` received: input flows."""
    RECONNECTING = "reconnecting"
    """Waiting for the next attempt, shortly after the link was lost; input is kept."""
    OFFLINE = "offline"
    """No link for longer than `offline_after_s`; still retrying."""
    CONFIG_FAULT = "configuration fault"
    """The server refused the configuration (bad key, model, field); retrying slowly."""
    STOPPED = "stopped"
    """The daemon is stopping; the link will not reconnect."""


@dataclass(frozen=True, slots=True)
class SetupComplete:
    """`setupComplete`: the server accepted `setup`; input may flow now."""

    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """`serverContent.modelTurn.parts[].inlineData` with an audio mime type.

    `pcm` is 16-bit little-endian mono PCM at `rate_hz` (24000 for Live API output).
    """

    pcm: bytes
    rate_hz: int

    def __repr__(self) -> str:  # keep logs short: audio is large
        return f"AudioChunk(pcm=<{len(self.pcm)} bytes>, rate_hz={self.rate_hz})"


@dataclass(frozen=True, slots=True)
class TextPart:
    """`serverContent.modelTurn.parts[].text`; `thought` marks the model's thinking text."""

    text: str
    thought: bool = False


@dataclass(frozen=True, slots=True)
class Interrupted:
    """`serverContent.interrupted`: the model turn was cut off (barge-in); stop playback now."""


@dataclass(frozen=True, slots=True)
class GenerationComplete:
    """`serverContent.generationComplete`: the model has produced all of this turn."""


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """`serverContent.turnComplete` with its optional `turnCompleteReason` enum name."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InputTranscription:
    """`serverContent.inputTranscription`: what the server heard the user say."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class OutputTranscription:
    """`serverContent.outputTranscription`: the text of the model's spoken answer."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Grounding:
    """`serverContent.groundingMetadata`, kept raw (search queries, chunks, supports)."""

    raw: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class WaitingForInput:
    """`serverContent.waitingForInput`: the model waits for the user."""


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One `toolCall.functionCalls[]` entry; answer it with a toolResponse of the same `id`."""

    id: str
    name: str
    args: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """`toolCall`: the model asks the client to run functions."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True, slots=True)
class ToolCallCancellation:
    """`toolCallCancellation.ids`: calls the client should stop and not answer."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GoAway:
    """`goAway`: the server ends this connection after `time_left_s` seconds (`timeLeft`)."""

    time_left_s: float


@dataclass(frozen=True, slots=True)
class SessionResumptionUpdate:
    """`sessionResumptionUpdate`; `new_handle` is usable only when `resumable` is true."""

    new_handle: str
    resumable: bool
    last_consumed_client_message_index: int | None = None


@dataclass(frozen=True, slots=True)
class UsageMetadata:
    """`usageMetadata` token counts; `*_by_modality` are (modality, tokenCount) pairs.

    The service sends one per model turn, on the message with its `turnComplete`, and the counts
    are that turn's: `prompt_tokens` is the whole context the model read for it, so it grows with
    the conversation. `problems` names fields that were malformed and counted as absent: usage is
    bookkeeping, and a bad count must not cost the turn it rides along with.
    """

    prompt_tokens: int = 0
    cached_content_tokens: int = 0
    response_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    thoughts_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_by_modality: tuple[tuple[str, int], ...] = ()
    response_tokens_by_modality: tuple[tuple[str, int], ...] = ()
    cache_tokens_by_modality: tuple[tuple[str, int], ...] = ()
    tool_use_prompt_tokens_by_modality: tuple[tuple[str, int], ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VoiceActivity:
    """`voiceActivity` (newer servers): `kind` is e.g. ACTIVITY_START; offset in seconds."""

    kind: str
    audio_offset_s: float | None = None


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """Content this client does not know (dotted key paths): log it, never fail on it."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TurnLost:
    """The user's current input could not be kept for replay and will not reach the model.

    Emitted by the session (not the server) so the appliance can tell the user to repeat.
    `dropped_audio_bytes` counts the 16 kHz s16le audio given up.
    """

    reason: str
    dropped_audio_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ConversationReset:
    """The server would not resume the conversation, so a fresh one starts: the model has forgotten
    what was said. Emitted by the session (not the server) so the appliance can say so."""

    reason: str


@dataclass(frozen=True, slots=True)
class InteractionStatus:
    """`serverContent.interactionStatus` (newer servers): IN_PROGRESS or IDLE. Informational: the
    end of a turn is `turnComplete`, which the same servers still send."""

    status: str


ServerEvent = (
    SetupComplete
    | AudioChunk
    | TextPart
    | Interrupted
    | GenerationComplete
    | TurnComplete
    | InputTranscription
    | OutputTranscription
    | Grounding
    | WaitingForInput
    | ToolCall
    | ToolCallCancellation
    | GoAway
    | SessionResumptionUpdate
    | UsageMetadata
    | VoiceActivity
    | InteractionStatus
    | UnknownMessage
)

SessionEvent = ServerEvent | TurnLost | ConversationReset
