"""The emulator over real loopback WebSockets: handshake, setup, push-to-talk and hands-free turns,
the parrot reply, transcriptions, text input and barge-in. A plain websockets client drives it."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pilive.emulator.media import parrot_pcm, tone_pcm
from tests.support.emulator_rig import (
    ACTIVITY_END,
    ACTIVITY_START,
    RawClient,
    audio_input,
    b64,
    content,
    emulator_options,
    handles,
    jpeg,
    output_text,
    reply_pcm,
    running,
    silence,
    tone,
    video_input,
)


@pytest.mark.parametrize("version", ["v1alpha", "v1beta", "v1"])
async def test_every_api_version_path_and_doubled_slashes_are_served(version: str) -> None:
    """The SDK connects to '//ws/...' (its base URL ends in '/'); all three versions answer."""
    async with running() as emu:
        async with RawClient.connect(emu, path="/" + emu.path(version)) as client:
            await client.setup()
        assert emu.recording.connections[0].api_version == version


async def test_unknown_path_gets_http_404_at_the_handshake() -> None:
    """A wrong method name never becomes a WebSocket: the handshake answers 404."""
    async with running() as emu:
        with pytest.raises(InvalidStatus) as info:
            async with connect(emu.url + "/ws/google.ai.generativelanguage.v1beta.Nope"):
                pass
        assert info.value.response.status_code == 404


@pytest.mark.parametrize("key", ["wrong-key", None])
async def test_wrong_or_missing_key_closes_1007_and_never_leaks_the_key(key: str | None) -> None:
    """A bad key is refused with the service's 1007 reason; the recorded headers hide secrets."""
    async with running() as emu:
        async with RawClient.connect(emu, key=key) as client:
            await client.send({"setup": {"model": "models/gemini-2.0-flash-live-001"}})
            code, reason = await client.closed()
        assert (code, reason) == (1007, "API key not valid. Please pass a valid API key.")
        record = emu.recording.connections[0]
        assert record.session_id is None
        if key is not None:
            assert record.headers["x-goog-api-key"] == "<redacted>"
        assert emu.api_key not in repr(emu.options)


async def test_key_in_the_query_string_is_accepted() -> None:
    """Browsers and the JS SDK pass ?key=; the emulator accepts it like the service."""
    async with (
        running() as emu,
        RawClient.connect(emu, key=None, query=f"?key={emu.api_key}") as client,
    ):
        await client.setup()


async def test_unknown_model_closes_1008_with_the_reason_cut_to_123_bytes() -> None:
    """The real reason is longer than a close frame allows and arrives cut ('Call ListMo...')."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.send({"setup": {"model": "models/gemini-nope"}})
        code, reason = await client.closed()
    assert code == 1008
    assert reason.startswith("models/gemini-nope is not found for API version v1beta, or is not")
    assert len(reason.encode()) == 123


@pytest.mark.parametrize(
    "first",
    [
        ACTIVITY_START,
        {"setup": {"model": "models/gemini-live-2.5-flash-preview"}, "realtimeInput": {}},
        {"setupp": {}},
    ],
    ids=["not-setup-first", "two-top-level-keys", "unknown-message"],
)
async def test_invalid_first_messages_close_1007(first: dict[str, object]) -> None:
    """Setup must come first, alone, and be a known message; otherwise 1007 invalid argument."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.send(first)
        assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_malformed_json_and_a_second_setup_close_1007() -> None:
    """Garbage after setup, and a repeated setup, are invalid arguments like on the service."""
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            await client.ws.send('{"realtimeInput": ')
            assert await client.closed() == (1007, "Request contains an invalid argument.")
        async with RawClient.connect(emu) as client:
            await client.setup()
            await client.send({"setup": {"model": "models/gemini-live-2.5-flash-preview"}})
            assert (await client.closed())[0] == 1007


async def test_push_to_talk_turn_parrots_the_exact_audio_in_order() -> None:
    """activityStart..audio..activityEnd -> a model turn: resumable:false while generating, a
    tone then the user's audio resampled to 24 kHz in 40 ms binary chunks, transcriptions,
    generationComplete, turnComplete with usageMetadata, then a fresh resumable handle. The
    emulator's recording holds the sent audio byte for byte."""
    spoken = tone(1.0, 300.0) + tone(0.3, 600.0)
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup()
            first = await client.recv()
            assert first["sessionResumptionUpdate"]["resumable"] is True
            # Mixed spellings and URL-safe unpadded base64, as the SDK sends.
            await client.send({"realtime_input": {"activity_start": {}}})
            for i in range(0, len(spoken), 640):
                data = b64(spoken[i : i + 640], urlsafe=True, pad=False)
                await client.send(
                    {
                        "realtime_input": {
                            "audio": {"mime_type": "audio/pcm;rate=16000", "data": data}
                        }
                    }
                )
            await client.send(ACTIVITY_END)
            messages = await client.turn()
            messages.append(await client.recv())
        assert emu.recording.audio_bytes() == spoken
        assert emu.recording.audio_bytes(turn=1) == spoken
    kinds = [next(iter(m.get("serverContent", m))) for m in messages]
    # inputTranscription has no guaranteed order; resumable:false comes before any reply.
    assert set(kinds[:2]) == {"inputTranscription", "sessionResumptionUpdate"}
    assert handles(messages)[0] == {"newHandle": "", "resumable": False}
    assert kinds[-3:] == ["generationComplete", "turnComplete", "sessionResumptionUpdate"]
    assert kinds.index("outputTranscription") < kinds.index("generationComplete")
    assert messages[-2]["usageMetadata"]["totalTokenCount"] > 0
    last = messages[-1]["sessionResumptionUpdate"]
    assert last["resumable"] is True and last["newHandle"].startswith("h-")
    assert output_text(messages) == "turn 1: heard 1.3 s of audio"
    expected = tone_pcm(150, 880.0) + parrot_pcm(spoken, 16000)
    assert reply_pcm(messages) == expected
    chunks = [p["inlineData"] for t in content(messages, "modelTurn") for p in t["parts"]]
    assert {c["mimeType"] for c in chunks} == {"audio/pcm;rate=24000"}
    assert all(len(json.dumps(c)) > 0 for c in chunks)
    assert len(chunks) == -(-len(expected) // 1920)


async def test_video_frames_are_counted_and_measured_from_the_jpeg_header() -> None:
    """Frames sent during an activity are reported with their sizes, read from the SOF marker."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False)
        await client.send(ACTIVITY_START)
        await client.send(audio_input(tone(0.5)))
        await client.send(video_input(jpeg(768, 768)))
        await client.send(video_input(jpeg(320, 240)))
        await client.send(ACTIVITY_END)
        messages = await client.turn()
    assert output_text(messages) == "turn 1: heard 0.5 s of audio, 2 frames 768x768, 320x240"
    assert emu.recording.session().has_video


async def test_activity_signals_with_automatic_detection_on_close_1007() -> None:
    """activityStart is only allowed when automaticActivityDetection.disabled is true."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(push_to_talk=False)
        await client.send(ACTIVITY_START)
        code, _ = await client.closed()
    assert code == 1007


async def test_hands_free_vad_finds_the_turn_in_the_audio() -> None:
    """With automatic detection, silence-speech-silence makes one turn holding the speech (dated
    back to its start) and ending after silenceDurationMs; the reply parrots that audio."""
    speech = tone(1.0, 440.0)
    async with running() as emu:
        async with RawClient.connect(emu) as client:
            await client.setup(
                push_to_talk=False,
                resumption=False,
                vad={"prefixPaddingMs": 40, "silenceDurationMs": 300},
            )
            stream = silence(0.5) + speech + silence(0.6)
            for i in range(0, len(stream), 640):
                await client.send(audio_input(stream[i : i + 640]))
            messages = await client.turn()
        turn_audio = emu.recording.audio_bytes(turn=1)
    assert turn_audio[: len(speech)] == speech
    assert len(turn_audio) == len(speech) + len(silence(0.3))
    assert output_text(messages) == "turn 1: heard 1.3 s of audio"


async def test_hands_free_audio_stream_end_closes_the_turn() -> None:
    """audioStreamEnd (mic off) ends a hands-free turn that is still in speech."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(push_to_talk=False, resumption=False)
        await client.send(audio_input(tone(0.6)))
        await client.send({"realtimeInput": {"audioStreamEnd": True}})
        messages = await client.turn()
    assert output_text(messages).startswith("turn 1: heard 0.6 s of audio")


async def test_client_content_and_realtime_text_are_turns() -> None:
    """clientContent with turnComplete and realtimeInput.text each make a model turn that says
    what it got; turnComplete:false waits for more."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(resumption=False)
        part = {"role": "user", "parts": [{"text": "Hi there"}]}
        await client.send({"clientContent": {"turns": [part], "turnComplete": False}})
        await client.send({"client_content": {"turns": [part], "turn_complete": True}})
        first = await client.turn()
        await client.send({"realtimeInput": {"text": "what now"}})
        second = await client.turn()
    assert output_text(first) == 'turn 1: heard text "Hi there", text "Hi there"'
    assert content(first, "inputTranscription")[0]["text"] == "Hi there Hi there"
    assert output_text(second) == 'turn 2: heard text "what now"'


async def test_text_modality_replies_with_text_parts() -> None:
    """responseModalities TEXT gets modelTurn text parts and no audio."""
    async with running() as emu, RawClient.connect(emu) as client:
        await client.setup(modalities=("TEXT",), transcription=False, resumption=False)
        await client.send({"realtimeInput": {"text": "hello"}})
        messages = await client.turn()
    parts = [p for t in content(messages, "modelTurn") for p in t["parts"]]
    assert parts == [{"text": 'turn 1: heard text "hello"'}]


async def test_barge_in_interrupts_the_reply() -> None:
    """activityStart while the model speaks -> interrupted then turnComplete, no
    generationComplete, and the rest of the reply is never sent."""
    spoken = tone(3.0)
    async with (
        running(emulator_options(time_scale=1.0, reply_speedup=1.0)) as emu,
        RawClient.connect(emu) as client,
    ):
        await client.setup()
        await client.recv()
        await client.push_to_talk(spoken, chunk_bytes=3200)
        await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
        await client.send(ACTIVITY_START)
        rest = await client.turn()
        update = await client.recv()
        await client.send(audio_input(tone(0.2)))
        await client.send(ACTIVITY_END)
        second = await client.turn()
    assert {"serverContent": {"interrupted": True}} in rest
    assert not content(rest, "generationComplete")
    assert len(reply_pcm(rest)) < len(parrot_pcm(spoken, 16000))
    assert update["sessionResumptionUpdate"]["resumable"] is True
    assert output_text(second).startswith("turn 2: heard 0.2 s")
    assert emu.recording.session().turns[0].interrupted


async def test_no_interruption_finishes_the_reply_then_answers_the_next_turn() -> None:
    """With activityHandling NO_INTERRUPTION the reply plays out; the new turn is answered after."""
    async with (
        running(emulator_options(time_scale=1.0, reply_speedup=1.0)) as emu,
        RawClient.connect(emu) as client,
    ):
        await client.setup(activity_handling="NO_INTERRUPTION", resumption=False)
        await client.push_to_talk(tone(1.0), chunk_bytes=3200)
        await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
        await client.push_to_talk(tone(0.2))
        first = await client.turn()
        second = await client.turn()
    assert not content(first, "interrupted")
    assert content(first, "generationComplete")
    assert output_text(second) == "turn 2: heard 0.2 s of audio"
    assert handles(first) == []
