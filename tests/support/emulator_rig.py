"""Test rig for the Live API emulator: a running emulator on 127.0.0.1 (ephemeral port), a TLS
variant with a trustme certificate, and a deliberately plain websockets client to poke it with.

The client builds frames by hand (not with pilive.live.wire) so the emulator is checked against
the protocol document, not against the daemon's own reading of it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pilive.emulator import Emulator, EmulatorOptions

MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
# Fast enough for tests, slow enough that a client can act mid-reply (a 40 ms chunk every 2 ms).
TEST_TIME_SCALE = 0.2


def emulator_options(**overrides: Any) -> EmulatorOptions:
    values: dict[str, Any] = {"time_scale": TEST_TIME_SCALE, "reply_delay_s": 0.05}
    values.update(overrides)
    return EmulatorOptions(**values)


@contextlib.asynccontextmanager
async def running(
    options: EmulatorOptions | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Emulator]:
    async with Emulator(options or emulator_options(), ssl_context=ssl_context) as emu:
        yield emu


@dataclass(frozen=True)
class TlsMaterial:
    cert_path: Path
    key_path: Path
    client_context: ssl.SSLContext
    ca_path: Path


def make_tls(directory: Path) -> TlsMaterial:
    """A throwaway CA and a certificate for 127.0.0.1, written as PEM files."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path = directory / "emulator-cert.pem"
    key_path = directory / "emulator-key.pem"
    ca_path = directory / "ca.pem"
    for blob in cert.cert_chain_pems:
        with cert_path.open("ab") as fh:
            fh.write(blob.bytes())
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    client = ssl.create_default_context(cafile=str(ca_path))
    return TlsMaterial(cert_path, key_path, client, ca_path)


# --- signals ------------------------------------------------------------------------------------


def tone(seconds: float, freq_hz: float = 440.0, rate_hz: int = 16000, peak: float = 0.3) -> bytes:
    n = round(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    return bytes((np.sin(2 * math.pi * freq_hz * t) * peak * 32767).astype("<i2").tobytes())


def silence(seconds: float, rate_hz: int = 16000) -> bytes:
    return b"\x00\x00" * round(seconds * rate_hz)


def jpeg(width: int, height: int) -> bytes:
    import simplejpeg

    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 1] = 128
    return bytes(simplejpeg.encode_jpeg(image, quality=70))


def b64(data: bytes, urlsafe: bool = False, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if pad else text.rstrip("=")


# --- a plain client -----------------------------------------------------------------------------


def setup_message(
    *,
    model: str = MODEL,
    push_to_talk: bool = True,
    resumption: bool = True,
    handle: str | None = None,
    transcription: bool = True,
    compression: bool = True,
    modalities: tuple[str, ...] = ("AUDIO",),
    functions: list[dict[str, Any]] | None = None,
    activity_handling: str | None = None,
    vad: dict[str, Any] | None = None,
) -> dict[str, Any]:
    setup: dict[str, Any] = {
        "model": f"models/{model}",
        "generationConfig": {"responseModalities": list(modalities)},
    }
    detection: dict[str, Any] = {"disabled": push_to_talk}
    detection.update(vad or {})
    ric: dict[str, Any] = {"automaticActivityDetection": detection}
    if activity_handling:
        ric["activityHandling"] = activity_handling
    setup["realtimeInputConfig"] = ric
    if resumption:
        setup["sessionResumption"] = {"handle": handle} if handle else {}
    if transcription:
        setup["inputAudioTranscription"] = {}
        setup["outputAudioTranscription"] = {}
    if compression:
        setup["contextWindowCompression"] = {"slidingWindow": {}, "triggerTokens": "25600"}
    if functions:
        setup["tools"] = [{"functionDeclarations": functions}]
    return {"setup": setup}


def audio_input(pcm: bytes, urlsafe: bool = False) -> dict[str, Any]:
    data = b64(pcm, urlsafe=urlsafe)
    return {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": data}}}


def video_input(jpeg_bytes: bytes) -> dict[str, Any]:
    return {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": b64(jpeg_bytes)}}}


ACTIVITY_START = {"realtimeInput": {"activityStart": {}}}
ACTIVITY_END = {"realtimeInput": {"activityEnd": {}}}


class RawClient:
    """Frames in and out as dicts; every server frame must be binary JSON."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        emu: Emulator,
        *,
        key: str | None = "",
        path: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> AsyncIterator[RawClient]:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["x-goog-api-key"] = key or emu.api_key
        uri = emu.url + (path or emu.path()) + query
        async with connect(
            uri, additional_headers=all_headers, max_size=None, ssl=ssl_context, open_timeout=10
        ) as ws:
            yield cls(ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout_s: float = 10.0) -> dict[str, Any]:
        async with __import__("asyncio").timeout(timeout_s):
            data = await self.ws.recv(decode=False)
        assert isinstance(data, bytes)
        message: dict[str, Any] = json.loads(data)
        self.received.append(message)
        return message

    async def setup(self, **kwargs: Any) -> dict[str, Any]:
        await self.send(setup_message(**kwargs))
        reply = await self.recv()
        assert reply == {"setupComplete": {}}, reply
        return reply

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Messages up to and including the first that satisfies predicate."""
        got: list[dict[str, Any]] = []
        while True:
            message = await self.recv(timeout_s)
            got.append(message)
            if predicate(message):
                return got

    async def turn(self, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        return await self.until(is_turn_complete, timeout_s)

    async def push_to_talk(self, pcm: bytes, chunk_bytes: int = 640) -> None:
        await self.send(ACTIVITY_START)
        for i in range(0, len(pcm), chunk_bytes):
            await self.send(audio_input(pcm[i : i + chunk_bytes]))
        await self.send(ACTIVITY_END)

    async def closed(self, timeout_s: float = 10.0) -> tuple[int | None, str]:
        """Read until the server closes; (code, reason) it sent."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.recv(timeout_s)
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, "")


def is_turn_complete(message: dict[str, Any]) -> bool:
    return bool(message.get("serverContent", {}).get("turnComplete"))


def content(messages: list[dict[str, Any]], field: str) -> list[Any]:
    return [m["serverContent"][field] for m in messages if field in m.get("serverContent", {})]


def reply_pcm(messages: list[dict[str, Any]]) -> bytes:
    out = b""
    for turn in content(messages, "modelTurn"):
        for part in turn["parts"]:
            if "inlineData" in part:
                out += base64.b64decode(part["inlineData"]["data"])
    return out


def output_text(messages: list[dict[str, Any]]) -> str:
    return "".join(t["text"] for t in content(messages, "outputTranscription"))


def handles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["sessionResumptionUpdate"] for m in messages if "sessionResumptionUpdate" in m]
