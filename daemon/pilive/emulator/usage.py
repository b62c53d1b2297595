"""What a turn costs, counted the way the service bills it: the `usageMetadata` the emulator sends.

Pure. The rates are the Gemini API's published ones: 32 tokens per second of audio, in and out
("Gemini represents each second of audio as 32 tokens", ai.google.dev/gemini-api/docs/tokens);
an image of at most 384 px both ways is 258 tokens, a larger one 258 per 768x768 tile it is cut
into (same page); `mediaResolution` sets a flat count per image instead (LOW 64, MEDIUM 256,
HIGH 256: the MediaResolution enum's documentation); text is about 4 characters a token.

As the service does, the emulator sends one usageMetadata per model turn, on the message with its
`turnComplete` (recorded sessions show it nowhere else), and the prompt of each turn is the whole
context the model read for it: the system instruction and tool declarations, every earlier turn
of the session (what the user said and what the model answered), then this turn's input. Context
window compression drops the oldest turns once the context passes `triggerTokens`, down to
`targetTokens`, as the sliding window does. Thoughts are billed but not kept in the context.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pilive.emulator.media import OUTPUT_RATE_HZ, pcm_seconds

AUDIO_TOKENS_PER_S = 32
IMAGE_TOKENS_PER_TILE = 258
IMAGE_TILE_PX = 768
SMALL_IMAGE_PX = 384  # both sides at most this: one tile's count, uncut
CHARS_PER_TOKEN = 4
MEDIA_RESOLUTION_IMAGE_TOKENS = {
    "MEDIA_RESOLUTION_LOW": 64,
    "MEDIA_RESOLUTION_MEDIUM": 256,
    "MEDIA_RESOLUTION_HIGH": 256,
}

Tokens = Counter[str]  # tokens by modality (TEXT, AUDIO, IMAGE)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def audio_tokens(byte_count: int, rate_hz: int) -> int:
    """s16le mono audio of `byte_count` bytes at `rate_hz`."""
    return round(pcm_seconds(byte_count, rate_hz) * AUDIO_TOKENS_PER_S)


def image_tokens(size: tuple[int, int] | None, media_resolution: str | None) -> int:
    """One image (frame): the resolution's flat count, else by its size in 768 px tiles."""
    flat = MEDIA_RESOLUTION_IMAGE_TOKENS.get(media_resolution or "")
    if flat is not None:
        return flat
    if size is None or (size[0] <= SMALL_IMAGE_PX and size[1] <= SMALL_IMAGE_PX):
        return IMAGE_TOKENS_PER_TILE
    tiles = math.ceil(size[0] / IMAGE_TILE_PX) * math.ceil(size[1] / IMAGE_TILE_PX)
    return tiles * IMAGE_TOKENS_PER_TILE


@dataclass(frozen=True)
class SetupCosts:
    """What the setup makes every turn cost: its text is read again each turn, images cost by
    its media resolution, and its compression trims the context."""

    base: int = 0  # systemInstruction and tool declarations, TEXT tokens
    media_resolution: str | None = None
    trigger_tokens: int | None = None  # None: no compression
    target_tokens: int | None = None

    @classmethod
    def of(
        cls,
        system_instruction: str,
        declarations: Iterable[Mapping[str, Any]],
        media_resolution: str | None,
        compression: tuple[int | None, int | None] | None,
    ) -> SetupCosts:
        """`compression`: (triggerTokens, targetTokens) of a slidingWindow, None when off."""
        declared = json.dumps(list(declarations), sort_keys=True) if declarations else ""
        trigger = target = None
        if compression is not None:
            trigger, target = compression
        return cls(
            text_tokens(system_instruction) + text_tokens(declared),
            media_resolution,
            trigger,
            target,
        )


def input_tokens(
    audio_bytes: int,
    audio_rate_hz: int,
    video_sizes: Sequence[tuple[int, int] | None],
    texts: Sequence[str],
    media_resolution: str | None,
) -> Tokens:
    """What one user turn put into the context, by modality."""
    tokens: Tokens = Counter()
    if audio_bytes:
        tokens["AUDIO"] += audio_tokens(audio_bytes, audio_rate_hz)
    for size in video_sizes:
        tokens["IMAGE"] += image_tokens(size, media_resolution)
    for text in texts:
        tokens["TEXT"] += text_tokens(text)
    return +tokens


def context(costs: SetupCosts, turns: Sequence[Tokens], start: int = 0) -> tuple[Tokens, int]:
    """The context the model reads for the newest turn, and where it now starts.

    The setup's text, then the turns from `start` on (each its input and the answers it got).
    Past `triggerTokens` the sliding window drops the oldest turns until the rest fits in
    `targetTokens` (trigger / 2 when unset, as the API assumes); the newest turn always stays,
    and the setup's text is never dropped. What was dropped stays dropped: the returned start is
    the caller's for next time.
    """
    start = min(start, max(len(turns) - 1, 0))
    total = costs.base + sum(sum(t.values()) for t in turns[start:])
    if costs.trigger_tokens is not None and total > costs.trigger_tokens:
        target = costs.target_tokens
        if target is None:
            target = costs.trigger_tokens // 2
        while start < len(turns) - 1 and total > target:
            total -= sum(turns[start].values())
            start += 1
    read: Tokens = Counter({"TEXT": costs.base})
    for turn in turns[start:]:
        read.update(turn)
    return +read, start


class ReplyMeter:
    """One model turn as it goes out: the prompt it read, then every part it sends (audio is
    counted in bytes and billed once at the end, so 40 ms chunks do not each round down)."""

    def __init__(self, prompt: Tokens, tool_use: int = 0) -> None:
        self.prompt = +prompt
        self.tool_use = tool_use
        self.thoughts = 0
        self._audio_bytes = 0
        self._text = 0

    def sent(self, message: Mapping[str, Any]) -> None:
        """A server message went out: modelTurn parts are answer (or thought) tokens, and a
        toolCall is answer text too (the model wrote the call)."""
        calls = message.get("toolCall")
        if isinstance(calls, dict):
            for call in calls.get("functionCalls") or ():
                self._text += text_tokens(json.dumps(call))
        content = message.get("serverContent")
        turn = content.get("modelTurn") if isinstance(content, dict) else None
        parts = turn.get("parts") if isinstance(turn, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            inline = part.get("inlineData")
            text = part.get("text")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                self._audio_bytes += _b64_size(inline["data"])
            elif isinstance(text, str) and part.get("thought"):
                self.thoughts += text_tokens(text)
            elif isinstance(text, str):
                self._text += text_tokens(text)

    @property
    def response(self) -> Tokens:
        """The answer so far, by modality (what joins the context when the turn is complete)."""
        tokens: Tokens = Counter(
            {"AUDIO": audio_tokens(self._audio_bytes, OUTPUT_RATE_HZ), "TEXT": self._text}
        )
        return +tokens

    def usage_metadata(self) -> dict[str, Any]:
        """The turn's usageMetadata; total = prompt + response + tool use + thoughts, as the API
        defines it."""
        response_by_modality = self.response
        prompt = sum(self.prompt.values())
        response = sum(response_by_modality.values())
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response + self.tool_use + self.thoughts,
        }
        if self.tool_use:
            usage["toolUsePromptTokenCount"] = self.tool_use
            usage["toolUsePromptTokensDetails"] = _details(Counter({"TEXT": self.tool_use}))
        if self.thoughts:
            usage["thoughtsTokenCount"] = self.thoughts
        if self.prompt:
            usage["promptTokensDetails"] = _details(self.prompt)
        if response_by_modality:
            usage["responseTokensDetails"] = _details(response_by_modality)
        return usage


def tool_use_tokens(responses: Iterable[Mapping[str, Any]]) -> int:
    """Function results the model reads: their JSON as text."""
    return sum(text_tokens(json.dumps(r.get("response", {}), sort_keys=True)) for r in responses)


def _details(tokens: Tokens) -> list[dict[str, Any]]:
    return [{"modality": m, "tokenCount": n} for m, n in sorted(tokens.items()) if n]


def _b64_size(data: str) -> int:
    """Decoded length of padded base64 without decoding it (the emulator built the text)."""
    return len(data) // 4 * 3 - data[-2:].count("=")
