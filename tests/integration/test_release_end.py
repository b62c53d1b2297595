"""A release ends the turn at once: the audio that arrived since the last whole mic chunk and
activityEnd go out together, without waiting for the chunk to fill.

The whole appliance runs against the emulator with gpiozero mock pins and a file microphone
paced in real time; what the model took in is compared with what the microphone delivered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from pilive.app import App
from pilive.config import Config, Secret, parse_config
from pilive.controls.events import ApplianceState, ButtonReleased, ControlEvent
from pilive.emulator import Emulator
from tests.support.daemon_rig import isolated_environ
from tests.support.emulator_rig import emulator_options, running
from tests.support.pulse_rig import write_wav

BUTTON = 17


def config_for(tmp_path: Path, emu: Emulator, mic_rate_hz: int) -> Config:
    rng = np.random.default_rng(3)
    noise = rng.integers(-12000, 12000, mic_rate_hz * 30).astype(np.int16)
    write_wav(tmp_path / "mic.wav", noise, mic_rate_hz)  # every chunk of it is unique
    text = f"""
[live]
endpoint = "{emu.url}"
api_key = "{emu.api_key}"
[audio.input]
backend = "file"
file_path = "mic.wav"
[audio.output]
backend = "file"
file_path = "speaker.wav"
earcons = false
[camera]
source = "none"
[gpio]
pin_factory = "mock"
button_pin = {BUTTON}
[conversation]
min_press_ms = 100
[state]
directory = "state"
"""
    return parse_config(text, source="test.toml", base_dir=tmp_path, environ=isolated_environ())


class WatchedApp(App):
    """The App, noting the mic chunks of the open turn, what the release took as the partial
    chunk, and how many whole chunks the microphone had delivered at the release and at the
    activityEnd."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.turn_chunks: list[bytes] = []
        self.partials: list[bytes] = []
        self.chunks_at_release: int | None = None
        self.chunks_at_end: int | None = None

    def _on_mic_chunk(self, pcm: bytes) -> None:
        if self.conversation.mic_open:
            self.turn_chunks.append(pcm)
        super()._on_mic_chunk(pcm)

    def _on_control_event(self, event: ControlEvent) -> None:
        if isinstance(event, ButtonReleased):
            self.chunks_at_release = self.capture.chunks
            take = self.capture.take_partial

            def noted() -> bytes:
                partial = take()
                self.partials.append(partial)
                return partial

            self.capture.take_partial = noted  # type: ignore[method-assign]
        super()._on_control_event(event)

    def _send_activity_end(self) -> None:
        if self.chunks_at_end is None and self.chunks_at_release is not None:
            self.chunks_at_end = self.capture.chunks
        super()._send_activity_end()


@pytest.mark.parametrize("mic_rate_hz", [44100, 16000])
async def test_the_release_sends_the_partial_chunk_and_activity_end_at_once(
    tmp_path: Path, mic_rate_hz: int
) -> None:
    """Hold the button for a second and let go: activityEnd is sent before the microphone
    delivers another chunk, with the partial chunk taken at the release (at 44.1 kHz, resampled
    in bursts, usually part of a chunk; at 16 kHz always empty). The model's turn is exactly the
    pre-roll, the chunks of the hold and that partial: nothing lost, nothing sent twice."""
    async with running(emulator_options()) as emu:
        app = WatchedApp(config_for(tmp_path, emu, mic_rate_hz), Secret(emu.api_key, "test"))
        task = asyncio.create_task(app.run())
        try:
            async with asyncio.timeout(15):
                while not (hasattr(app, "link") and app.conversation.state is ApplianceState.IDLE):
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.6)  # a full pre-roll behind the microphone
                pin = app.controls.pin_factory.pin(BUTTON)
                pin.drive_low()
                await asyncio.sleep(1.0)
                pin.drive_high()
                while emu.recording.counters["turns"] < 1:
                    await asyncio.sleep(0.01)
        finally:
            app.request_stop()
            await task
    assert app.chunks_at_release is not None
    assert app.chunks_at_end == app.chunks_at_release  # no mic chunk was waited for
    assert len(app.partials) == 1
    partial = app.partials[0]
    assert len(partial) < app.capture.chunk_bytes
    if mic_rate_hz == 16000:
        assert partial == b""
    took = bytes(emu.recording.turn(None, 1).audio)
    held = b"".join(app.turn_chunks) + partial
    assert len(app.turn_chunks) >= 40  # a second of 20 ms chunks
    assert took.endswith(held)  # the hold's audio, in order, ending with the partial
    # Before it only the pre-roll, whole chunks: 300 ms plus the 100 ms minimum press at most.
    preroll = len(took) - len(held)
    assert preroll % app.capture.chunk_bytes == 0
    assert 0 < preroll <= (300 + 100) * 32
