"""What the parrot says about a user turn: server message bodies, built as plain dicts.

Every dict here is a canonical camelCase BidiGenerateContentServerMessage (the conformance tests
validate each one with the SDK's strict pydantic models).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pilive.emulator.frames import FunctionDeclaration
from pilive.emulator.media import OUTPUT_MIME, OUTPUT_RATE_HZ, parrot_pcm, pcm_seconds, tone_pcm
from pilive.emulator.sessions import TurnRecord


def describe_turn(turn: TurnRecord, tool_said: str | None = None) -> str:
    """'turn 3: heard 2.4 s of audio, 2 frames 768x768' (what a test and a human can check)."""
    heard: list[str] = []
    if turn.audio:
        heard.append(f"{pcm_seconds(len(turn.audio), turn.audio_rate_hz):.1f} s of audio")
    if turn.video_sizes:
        sizes = ", ".join(
            dict.fromkeys(f"{s[0]}x{s[1]}" if s else "unknown size" for s in turn.video_sizes)
        )
        count = len(turn.video_sizes)
        heard.append(f"{count} frame{'s' if count != 1 else ''} {sizes}")
    for text in turn.texts:
        heard.append(f"text {json.dumps(text, ensure_ascii=False)}")
    said = f"turn {turn.number}: heard " + (", ".join(heard) if heard else "nothing")
    if tool_said is not None:
        said += f"; the tool said: {tool_said}"
    return said


def tool_result_text(turn: TurnRecord, said: str) -> str:
    """What the model says when a NON_BLOCKING function's result comes in after its answer."""
    return f"turn {turn.number}: the tool said: {said}"


def input_transcript(turn: TurnRecord) -> str:
    if turn.texts:
        return " ".join(turn.texts)
    return f"({pcm_seconds(len(turn.audio), turn.audio_rate_hz):.1f} s of audio)"


def reply_audio(turn: TurnRecord, tone_ms: int, tone_hz: float) -> bytes:
    """A short tone, then the user's own audio at 24 kHz."""
    return tone_pcm(tone_ms, tone_hz) + parrot_pcm(bytes(turn.audio), turn.audio_rate_hz)


def chunk_pcm(pcm: bytes, chunk_ms: int) -> list[bytes]:
    size = OUTPUT_RATE_HZ * chunk_ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)] or [b""]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def audio_message(pcm: bytes) -> dict[str, Any]:
    part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": b64(pcm)}}
    return {"serverContent": {"modelTurn": {"parts": [part]}}}


def text_message(text: str) -> dict[str, Any]:
    return {"serverContent": {"modelTurn": {"parts": [{"text": text}]}}}


def thoughts(answer: str) -> list[str]:
    """The thought summaries before an answer: what was heard, then what will be said (in the
    bold-headline form thought summaries take)."""
    return [
        f"**Taking in the turn**\nWhat I have to answer: {answer}.",
        "**Planning the answer**\nA short tone, then their own words back.",
    ]


def thought_message(text: str) -> dict[str, Any]:
    """A thought summary: a text part marked `thought`, in a modelTurn of its own."""
    return {"serverContent": {"modelTurn": {"parts": [{"text": text, "thought": True}]}}}


def transcription_message(kind: str, text: str) -> dict[str, Any]:
    """kind: "inputTranscription" or "outputTranscription"."""
    return {"serverContent": {kind: {"text": text}}}


def turn_complete_message(usage: dict[str, Any]) -> dict[str, Any]:
    """The end of a model turn, with its usage riding along (where the service puts it)."""
    return {"serverContent": {"turnComplete": True}, "usageMetadata": usage}


def made_up_args(decl: FunctionDeclaration, turn_number: int) -> dict[str, Any]:
    """Arguments that fit the declared schema: strings say the turn, numbers are the turn."""
    props = decl.parameters.get("properties") or {}
    args: dict[str, Any] = {}
    if not isinstance(props, dict):
        return args
    for name, schema in props.items():
        kind = str(schema.get("type", "STRING") if isinstance(schema, dict) else "STRING").upper()
        if kind in {"INTEGER", "NUMBER"}:
            args[name] = turn_number
        elif kind == "BOOLEAN":
            args[name] = True
        elif kind == "ARRAY":
            args[name] = []
        elif kind == "OBJECT":
            args[name] = {}
        else:
            args[name] = f"turn {turn_number}"
    return args


def go_away_message(time_left_s: float) -> dict[str, Any]:
    return {"goAway": {"timeLeft": duration(time_left_s)}}


def duration(seconds: float) -> str:
    """proto3 JSON Duration: '50s', '0.5s'."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return f"{text}s"
