"""The camera under the privacy mute: suspended, its source is closed (not merely unread)."""

from __future__ import annotations

import asyncio

from pilive.camera import CameraMode, CameraState
from tests.integration.test_camera_streamer import Sink, running, streamer_for, wait_for
from tests.support.camera_rig import ScriptedSource


async def test_suspend_closes_the_source_and_resume_opens_it_again() -> None:
    """Streaming continuously, `suspend` closes the camera and no frame follows; `resume`
    starts the source again and frames flow."""
    sink = Sink()
    source = ScriptedSource()
    streamer = streamer_for(lambda: source, sink, mode=CameraMode.CONTINUOUS, size_px=64)
    async with running(streamer):
        streamer.connected_changed(True)
        await wait_for(lambda: len(sink.frames) >= 1)
        streamer.suspend()
        await wait_for(lambda: source.closes == 1 and streamer.state is CameraState.OFF)
        assert streamer.status == "camera off (privacy mute)"
        count = len(sink.frames)
        await asyncio.sleep(2.2)
        assert len(sink.frames) == count
        assert source.starts == 1
        streamer.resume()
        await wait_for(lambda: len(sink.frames) > count)
        assert source.starts == 2


async def test_suspended_before_it_runs_the_camera_never_opens() -> None:
    """A daemon that starts muted never starts its camera."""
    sink = Sink()
    source = ScriptedSource()
    streamer = streamer_for(lambda: source, sink, mode=CameraMode.CONTINUOUS, size_px=64)
    streamer.suspend()
    async with running(streamer):
        streamer.connected_changed(True)
        await asyncio.sleep(1.5)
        assert source.starts == 0 and sink.frames == []
