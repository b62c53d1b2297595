"""`[limits] daily_tokens` in hands-free mode, the speaker left on in a kitchen: the whole daemon
(file microphone that speaks every 3 s, mock pins) against the emulator, which bills each turn.

Hands-free streams the room all the time, so a spent limit must close the microphone, not only
refuse presses: once the first turn spends the limit, the emulator receives no more audio and
starts no more turns however long the room keeps talking, and the stream is ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pilive.controls.events import ApplianceState
from tests.integration.test_app import app_config, start
from tests.integration.test_privacy_mute import media_received, speech_and_silence_wav
from tests.support.emulator_rig import emulator_options, running

LIMIT_TOKENS = 200  # one turn's prompt alone (system instruction, tools, audio, frames) is more


async def test_a_spent_limit_closes_the_hands_free_microphone(tmp_path: Path) -> None:
    """The first turn is answered and spends the limit; then, over two more bursts of speech in
    the room, not one microphone byte reaches the model and no turn starts; the stream got its
    audioStreamEnd, the error earcon says the microphone closed (once), the LED shows the limit
    and STATUS says it."""
    speech_and_silence_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        config = app_config(
            tmp_path,
            emu,
            f"[limits]\ndaily_tokens = {LIMIT_TOKENS}\n",
            conversation='mode = "hands-free"',
        )
        async with start(config, emu.api_key) as r:
            await r.until(lambda: r.state is ApplianceState.LIMIT_SPENT, timeout_s=20)
            assert not r.app.conversation.mic_open
            await r.until(lambda: "earcon error" in r.timeline)
            await asyncio.sleep(0.5)  # what was already on its way when the limit was spent
            audio_before, _ = media_received(emu)
            turns_before = emu.recording.counters["turns"]
            await asyncio.sleep(6.5)  # two more bursts of speech in the room
            assert media_received(emu)[0] == audio_before
            assert emu.recording.counters["turns"] == turns_before
            assert emu.recording.connections[-1].audio_stream_ends >= 1
            assert r.state is ApplianceState.LIMIT_SPENT
            assert r.timeline.count("earcon error") == 1, r.timeline
            assert "daily token limit spent" in r.app._status_text()
