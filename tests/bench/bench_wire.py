"""CPU per audio message: pilive's wire format vs the google-genai SDK vs a bare json floor.

Built: one 20 ms chunk of 16 kHz s16le mic audio (640 bytes) into a realtimeInput text frame.
Parsed: one 40 ms chunk of 24 kHz model audio (1920 bytes) from a binary serverContent frame.
The SDK rows run the SDK's own per-message code: for sending, what `send_realtime_input` does
(pydantic validation, its converter, dict conversion, json.dumps) and `LiveClientMessage(...)
.model_dump_json`; for receiving, what `AsyncSession._receive` does (json.loads, its converter,
`LiveServerMessage._from_response`) and `LiveServerMessage.model_validate_json`.
No network. Figures are CPU time (process_time), best of several repeats on a shared machine.

Run: python -m tests.bench.bench_wire
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable

from pilive.live import wire
from pilive.live.events import AudioChunk

REPEATS = 7


def cpu_us_per_call(fn: Callable[[], object], iterations: int) -> float:
    """Best-of-REPEATS CPU microseconds per call (the least-disturbed run on a shared machine)."""
    best_ns = None
    for _ in range(REPEATS):
        start = time.process_time_ns()
        for _ in range(iterations):
            fn()
        elapsed = time.process_time_ns() - start
        best_ns = elapsed if best_ns is None else min(best_ns, elapsed)
    assert best_ns is not None
    return best_ns / iterations / 1000


def main() -> dict[str, float]:
    """Measure, print a table, return the figures (µs CPU per message, and ratios)."""
    from google.genai import _common, types
    from google.genai import _live_converters as live_converters

    mic_pcm = os.urandom(640)  # 20 ms, 16 kHz, s16le
    out_pcm = os.urandom(1920)  # 40 ms, 24 kHz, s16le
    mime_in = "audio/pcm;rate=16000"

    def build_pilive() -> str:
        return wire.build_audio(mic_pcm)

    def build_sdk_send_realtime_input() -> str:
        params = types.LiveSendRealtimeInputParameters.model_validate(
            {"audio": types.Blob(data=mic_pcm, mime_type=mime_in)}
        )
        as_dict = live_converters._LiveSendRealtimeInputParameters_to_mldev(from_object=params)
        as_dict = _common.encode_unserializable_types(_common.convert_to_dict(as_dict))
        return json.dumps({"realtime_input": as_dict})

    def build_sdk_model_dump() -> str:
        message = types.LiveClientMessage(
            realtime_input=types.LiveClientRealtimeInput(
                audio=types.Blob(data=mic_pcm, mime_type=mime_in)
            )
        )
        return str(message.model_dump_json(by_alias=True, exclude_none=True))

    def build_floor() -> str:
        return json.dumps(
            {
                "realtimeInput": {
                    "audio": {"mimeType": mime_in, "data": base64.b64encode(mic_pcm).decode()}
                }
            }
        )

    server_frame = json.dumps(
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": "audio/pcm;rate=24000",
                                "data": base64.b64encode(out_pcm).decode(),
                            }
                        }
                    ]
                }
            }
        }
    ).encode()

    def parse_pilive() -> bytes:
        (chunk,) = wire.parse_server_message(server_frame)
        assert isinstance(chunk, AudioChunk)
        return chunk.pcm

    empty_kwargs = types.LiveServerMessage().model_dump()

    def parse_sdk_receive() -> bytes:
        response = json.loads(server_frame)
        response_dict = live_converters._LiveServerMessage_from_mldev(response)
        message = types.LiveServerMessage._from_response(
            response=response_dict, kwargs=empty_kwargs
        )
        return bytes(message.server_content.model_turn.parts[0].inline_data.data)

    def parse_sdk_validate_json() -> bytes:
        message = types.LiveServerMessage.model_validate_json(server_frame)
        return bytes(message.server_content.model_turn.parts[0].inline_data.data)

    def parse_floor() -> bytes:
        message = json.loads(server_frame)
        data = message["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"]
        return binascii.a2b_base64(data)

    # Same answers before timing anything.
    assert json.loads(build_pilive()) == json.loads(build_floor())
    sdk_sent = json.loads(build_sdk_send_realtime_input())["realtime_input"]["audio"]["data"]
    assert base64.urlsafe_b64decode(sdk_sent) == mic_pcm
    assert parse_pilive() == parse_sdk_receive() == parse_sdk_validate_json() == parse_floor()

    build, parse = "build 20 ms @16 kHz", "parse 40 ms @24 kHz"
    # (key, message, implementation, function, iterations); the floor leads each group.
    rows: list[tuple[str, str, str, Callable[[], object], int]] = [
        ("build_floor", build, "floor: json.dumps + b64encode", build_floor, 20000),
        ("build_pilive", build, "pilive wire.build_audio", build_pilive, 20000),
        ("build_sdk", build, "SDK send_realtime_input path", build_sdk_send_realtime_input, 3000),
        (
            "build_sdk_dump",
            build,
            "SDK LiveClientMessage.model_dump_json",
            build_sdk_model_dump,
            3000,
        ),
        ("parse_floor", parse, "floor: json.loads + a2b_base64", parse_floor, 20000),
        ("parse_pilive", parse, "pilive parse_server_message", parse_pilive, 20000),
        ("parse_sdk", parse, "SDK _receive path", parse_sdk_receive, 3000),
        ("parse_sdk_validate", parse, "SDK model_validate_json", parse_sdk_validate_json, 3000),
    ]
    results: dict[str, float] = {}
    print(f"{'message':<22}{'implementation':<40}{'µs CPU':>9}{'x floor':>9}")
    floor_us = 0.0
    for key, what, name, fn, iterations in rows:
        us = cpu_us_per_call(fn, iterations)
        if key.endswith("_floor"):
            floor_us = us
        results[f"{key}_us"] = us
        print(f"{what:<22}{name:<40}{us:>9.2f}{us / floor_us:>9.2f}")
    for side in ("build", "parse"):
        results[f"{side}_pilive_vs_floor"] = (
            results[f"{side}_pilive_us"] / results[f"{side}_floor_us"]
        )
        results[f"{side}_sdk_vs_pilive"] = results[f"{side}_sdk_us"] / results[f"{side}_pilive_us"]
        print(
            f"{side}: pilive {results[f'{side}_pilive_vs_floor']:.2f}x the floor;"
            f" the SDK's path costs {results[f'{side}_sdk_vs_pilive']:.1f}x pilive"
        )
    return results


if __name__ == "__main__":
    main()
