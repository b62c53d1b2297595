"""A `LiveLink` against an endpoint, with every event and status kept: the link-level test rig.

`Harness` runs the real link and session (no mocks) against the emulator or a fault proxy and
offers a push-to-talk turn (`say`) paced like the microphone, plus `until` to wait for a state.
`on_status` sees each link status as it comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from pilive.config import Secret
from pilive.live import wire
from pilive.live.events import LinkState, SessionEvent, TurnComplete
from pilive.live.session import LiveSession
from pilive.net.connection import LinkOptions, LinkStatus, LiveLink
from pilive.net.tokens import TokenSource
from pilive.state import HandleStore
from tests.support.emulator_rig import MODEL, tone

CHUNK_BYTES = 640  # 20 ms at 16 kHz s16le


def fast_options(endpoint: str, **overrides: Any) -> LinkOptions:
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "connect_timeout_s": 3.0,
        "ping_interval_s": 5.0,
        "ping_timeout_s": 5.0,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.4,
        "config_fault_retry_s": 30.0,
        "offline_after_s": 1.0,
    }
    values.update(overrides)
    return LinkOptions(**values)


class Harness:
    """A LiveLink running against an endpoint, with every event and status kept for asserts."""

    def __init__(
        self,
        endpoint: str,
        key: str,
        *,
        store: HandleStore | None = None,
        functions: tuple[wire.FunctionDeclaration, ...] = (),
        backoff: Callable[[], Iterator[float]] | None = None,
        model: str = MODEL,
        session_options: dict[str, Any] | None = None,
        on_status: Callable[[LinkStatus], None] | None = None,
        tokens: TokenSource | None = None,
        setup: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        setup_options = wire.SetupOptions(
            model=model,
            input_audio_transcription=True,
            output_audio_transcription=True,
            function_declarations=functions,
            **(setup or {}),
        )
        self.events: list[SessionEvent] = []
        self.statuses: list[LinkStatus] = []
        self._on_status = on_status
        session_kwargs = {"handover_margin_s": 1.0} | (session_options or {})
        self.session = LiveSession(setup_options, **session_kwargs)
        if tokens is not None:  # a fleet device: ephemeral tokens on v1alpha's Constrained
            options = {"constrained": True, "api_version": "v1alpha"} | options
        self.link = LiveLink(
            self.session,
            None if tokens is not None else Secret(key, "test"),
            fast_options(endpoint, **options),
            on_event=self.events.append,
            on_status=self._status,
            handle_store=store,
            backoff=backoff,
            tokens=tokens,
        )
        self.task: asyncio.Task[None] | None = None

    def _status(self, status: LinkStatus) -> None:
        self.statuses.append(status)
        if self._on_status is not None:
            self._on_status(status)

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.link.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.link.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.01)

    async def connected(self) -> None:
        await self.until(lambda: self.link.status.state is LinkState.CONNECTED)

    def turn_completes(self) -> int:
        return sum(isinstance(e, TurnComplete) for e in self.events)

    async def say(self, pcm: bytes) -> None:
        """One whole push-to-talk turn: activityStart, the audio, activityEnd."""
        self.link.send_activity_start()
        await self.speak(pcm)
        self.link.send_activity_end()

    async def speak(self, pcm: bytes, *, pace_s: float = 0.002) -> None:
        """Send `pcm` as 20 ms chunks, yielding to the loop between them like the mic does."""
        for i in range(0, len(pcm), CHUNK_BYTES):
            self.link.send_audio(pcm[i : i + CHUNK_BYTES])
            await asyncio.sleep(pace_s)


def speech(seconds: float, seed: int) -> bytes:
    """Distinct, recognisable audio per test so a replay mix-up cannot pass unnoticed."""
    return tone(seconds, freq_hz=300 + 37 * seed)
