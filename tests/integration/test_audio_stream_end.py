"""audioStreamEnd in hands-free mode, against the emulator (which notes each one and flushes its
voice detection, as the service does): the real link and session with the hands-free audio path,
then the whole daemon on real PulseAudio devices whose server dies under it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pilive.controls.events import ApplianceState
from pilive.emulator.recording import ConnectionRecord
from pilive.hands_free import HandsFreeAudio
from pilive.live import wire
from pilive.net.connection import LinkStatus
from tests.integration.test_app import app_config, start
from tests.support.emulator_rig import emulator_options, running, silence, tone
from tests.support.link_rig import CHUNK_BYTES, Harness
from tests.support.pulse_rig import PulseRig, pulse_rig  # noqa: F401 - a fixture used below

HANDS_FREE = wire.VadOptions(disabled=False, silence_duration_ms=500)


def realtime_kinds(record: ConnectionRecord) -> list[str]:
    """What the client sent after setup, one word per frame: "audio" or "end" (audioStreamEnd),
    with runs of audio folded into one word."""
    kinds: list[str] = []
    for frame in record.received:
        body = (frame.message or {}).get("realtimeInput", {})
        kind = "audio" if "audio" in body else "end" if "audioStreamEnd" in body else None
        if kind is not None and not (kind == "audio" and kinds[-1:] == ["audio"]):
            kinds.append(kind)
    return kinds


async def feed(audio: HandsFreeAudio, pcm: bytes) -> None:
    """Mic chunks, faster than real time (the server's detector counts audio, not seconds)."""
    for i in range(0, len(pcm), CHUNK_BYTES):
        audio.send(pcm[i : i + CHUNK_BYTES])
        await asyncio.sleep(0.002)


async def test_a_microphone_that_stops_mid_word_ends_the_stream_and_the_turn() -> None:
    """The chunks stop in the middle of speech (a stalled capture): with no silence to end it,
    the server would wait for ever; a second later audioStreamEnd goes out, the emulator ends the
    turn with the audio it had, and it is answered. Audio then flows again as usual (a second
    utterance ends by the server's silence detection) and its stop is ended again."""
    async with running(emulator_options()) as emu:
        loop = asyncio.get_running_loop()
        paths: list[HandsFreeAudio] = []

        def on_status(status: LinkStatus) -> None:
            for path in paths:
                path.link_changed(status.state)

        hands_free = {"vad": HANDS_FREE}
        async with Harness(emu.url, emu.api_key, setup=hands_free, on_status=on_status) as h:
            audio = HandsFreeAudio(h.link, loop)
            paths.append(audio)
            await h.connected()
            record = emu.recording.connections[-1]
            await feed(audio, silence(0.3) + tone(0.8))
            await h.until(lambda: record.audio_stream_ends == 1)
            await h.until(lambda: h.turn_completes() == 1)
            first = emu.recording.turn(None, 1)
            assert first.source == "vad"
            assert len(first.audio) >= len(tone(0.8))  # the whole word, cut by the stop only

            await feed(audio, tone(0.6, freq_hz=600) + silence(0.8))
            await h.until(lambda: h.turn_completes() == 2)
            await h.until(lambda: record.audio_stream_ends == 2)
            audio.close()
    assert emu.recording.turn(None, 2).source == "vad"
    assert realtime_kinds(record) == ["audio", "end", "audio", "end"]


@pytest.mark.rig
async def test_a_lost_microphone_ends_the_stream_on_every_connection_until_it_is_back(
    tmp_path: Path,
    pulse_rig: PulseRig,  # noqa: F811 - the fixture imported above
) -> None:
    """The whole daemon, hands-free, its microphone a real PulseAudio device. The sound server
    dies (device lost): audioStreamEnd goes out a second later; the connection then drops and
    resumes while the microphone is still gone, and the new connection gets its own end after
    the audio the session replays; the server comes back, the capture reopens by itself and
    audio flows on the same connection again."""
    audio_toml = (
        '[audio.input]\nbackend = "pyaudio"\ndevice = "pilive_mic"\n'
        '[audio.output]\nbackend = "file"\nfile_path = "speaker.wav"\n'
    )
    try:
        async with running(emulator_options()) as emu:
            config = app_config(tmp_path, emu, audio=audio_toml, conversation='mode = "hands-free"')
            async with start(config, emu.api_key) as r:
                await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)
                first = emu.recording.connections[-1]
                await r.until(lambda: len(first.audio_chunks) > 25, timeout_s=15)
                assert first.audio_stream_ends == 0

                await asyncio.to_thread(pulse_rig.kill)
                await r.until(lambda: first.audio_stream_ends == 1, timeout_s=15)

                emu.faults.abort()
                await r.until(lambda: len(emu.recording.connections) == 2, timeout_s=15)
                second = emu.recording.connections[-1]
                await r.until(lambda: second.audio_stream_ends == 1, timeout_s=15)

                await asyncio.to_thread(pulse_rig.start)
                await r.until(lambda: realtime_kinds(second)[-1:] == ["audio"], timeout_s=30)
                await r.until(lambda: r.app.capture.ok, timeout_s=15)
                chunks = len(second.audio_chunks)
                await r.until(lambda: len(second.audio_chunks) > chunks + 25, timeout_s=15)
    finally:
        if pulse_rig.process is None:
            pulse_rig.start()
    assert realtime_kinds(first) == ["audio", "end"]
    assert realtime_kinds(second)[-2:] == ["end", "audio"]
    assert second.audio_stream_ends == 1
