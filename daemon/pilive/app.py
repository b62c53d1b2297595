"""The running appliance: the parts `wiring` builds from the configuration, on one loop.

Data flow, all on the event loop thread (device threads only hand bytes over with
`call_soon_threadsafe`):
- mic chunk -> (while the conversation's mic is open) LiveLink.send_audio
- camera frame -> LiveLink.send_video
- server event -> Conversation.session_event -> actions (speaker, LEDs, tools, journal)
- button edge -> Conversation.button_pressed/released -> actions (activityStart, flush, ...)
- link status -> Conversation.link_changed, camera, systemd STATUS

Every decision is in the pure `Conversation`; this module only carries its actions out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import signal
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, assert_never

from pilive import health, wake_word, wiring
from pilive.audio.capture import Capture
from pilive.audio.echo_mode import EchoPlan
from pilive.audio.playback import Playback
from pilive.config import Config, Secret
from pilive.config_warnings import model_warnings
from pilive.controls.events import (
    ApplianceState,
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    NewConversationPressed,
)
from pilive.conversation import (
    Action,
    CameraActivity,
    CancelTools,
    Conversation,
    EndActivity,
    EndOfAnswer,
    FlushPlayback,
    Journal,
    NewConversation,
    PlayAudio,
    PlayEarcon,
    RunTool,
    SendText,
    ShowState,
    StartActivity,
)
from pilive.hands_free import HandsFreeAudio
from pilive.household import Household
from pilive.live import wire
from pilive.live.events import AudioChunk, GoAway, LinkState, SessionEvent, UsageMetadata
from pilive.live.session import LiveSession
from pilive.net.connection import LinkStatus, LiveLink
from pilive.parts import Controls
from pilive.ratelimit import LogLimiter
from pilive.state import HandleStore, UsageStore
from pilive.systemd import (
    Heartbeats,
    Notifier,
    event_fields,
    run_watchdog,
    watchdog_interval_s,
)
from pilive.timeline import run_timeline
from pilive.timer_keeper import TimerKeeper
from pilive.tools.base import ToolResult, ToolRunner
from pilive.usage_keeper import UsageKeeper

if TYPE_CHECKING:
    # numpy underneath: wiring imports them only for a configuration that has them.
    from pilive.audio.echo import EchoProcessor
    from pilive.audio.wake import WakeModel, WakeWordListener
    from pilive.camera import CameraStreamer
    from pilive.metrics import MetricsExporter

log = logging.getLogger("pilive")
THOUGHT_LOG_INTERVAL_S = 5.0  # thought summaries at info level: at most one line this often

_SHUTDOWN_BUDGET_S = 4.0  # systemd's stop timeout is longer; the issue asks for under 5 s
_HEARTBEAT_MAX_AGE_S = 5.0  # a device callback silent this long while "ok" is a hang


@dataclasses.dataclass(slots=True)
class Stats:
    """Moments and counts for the demo's summary and the benchmarks (time.monotonic seconds)."""

    started_s: float = 0.0
    ready_s: float = 0.0
    presses: int = 0
    turns: int = 0
    barge_ins: int = 0
    frames_sent: int = 0
    frame_bytes_sent: int = 0
    last_press_s: float = 0.0
    last_activity_start_s: float = 0.0
    last_release_s: float = 0.0
    last_activity_end_s: float = 0.0
    # The newest answers only: a daemon that runs for months must not grow with every answer.
    answer_latencies_s: collections.deque[float] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=1000)
    )
    tool_calls: int = 0


class App:
    """One appliance: hardware adapters, the Live API link and the conversation, wired together."""

    def __init__(
        self,
        config: Config,
        api_key: Secret,
        *,
        notifier: Notifier | None = None,
        on_timeline: Callable[[float, str], None] | None = None,
    ) -> None:
        self.config = config
        self.api_key = api_key
        self.notifier = notifier or Notifier()
        self.on_timeline = on_timeline
        self.stats = Stats()
        self.conversation = Conversation(
            wiring.timing(config), hands_free=config.conversation.mode == "hands-free"
        )
        self.heartbeats = Heartbeats()
        self._stop = asyncio.Event()
        self._tick_handle: asyncio.TimerHandle | None = None
        self._end_after_chunk = False
        self._end_fallback: asyncio.TimerHandle | None = None
        self._awaiting_answer = False
        self._answer_rate_hz = wire.OUTPUT_AUDIO_RATE_HZ  # of the newest AudioChunk
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_status = ""
        self._thought_lines = LogLimiter(THOUGHT_LOG_INTERVAL_S)
        self.failure: str | None = None
        """Why a part failed and stopped the daemon (`pilive run` then exits 1), or None."""
        # Built in run(), on the loop; typed here for readers.
        self.capture: Capture
        self.echo: EchoProcessor | None = None  # between the microphone and the link
        self.wake: WakeWordListener | None = None  # the wake word's ear, when configured
        self.echo_plan = EchoPlan("off", "not built yet")
        self.playback: Playback
        self.camera: CameraStreamer | None = None
        self.controls: Controls | None = None
        self.tools: ToolRunner
        self.session: LiveSession
        self.link: LiveLink
        self.handle_store: HandleStore
        self.timers: TimerKeeper
        self.metrics: MetricsExporter | None = None
        self.hands_free_audio: HandsFreeAudio | None = None
        self.usage: UsageKeeper
        self.household: Household

    # -- lifecycle -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run until `request_stop()` (SIGTERM/SIGINT in `pilive run`, or the timeline)."""
        loop = asyncio.get_running_loop()
        self.stats.started_s = time.monotonic()
        # The wake word's model loads off the loop (a TFLite model: about 0.2 s here, longer on
        # a Pi Zero); nothing else has started yet, but the loop is never held.
        wake_model = None
        if self.config.conversation.wake_word != "off":
            wake_model = await asyncio.to_thread(wiring.wake_model, self.config)
        self._build(loop, wake_model)
        try:
            await self.household.start()  # the kept mute and volume, before a device opens
            await self._start_hardware()
            await self.usage.start()
            for warning in model_warnings(self.config):
                log.warning("%s", warning)
            self._do(self.conversation.start())
            self.stats.ready_s = time.monotonic()
            self.notifier.ready(self._status_text())
            self._note("ready (local hardware up)")
            self._spawn(self.link.run(), "link")
            if self.camera is not None:
                self._spawn(self.camera.run(), "camera")
            interval_s = watchdog_interval_s()
            if interval_s is not None:
                watching = run_watchdog(
                    self.notifier, self.heartbeats, interval_s, on_tick=self._update_status
                )
                self._spawn(watching, "watchdog")
            if self.config.timeline:
                script = run_timeline(
                    self.config,
                    self.controls,
                    on_event=self._on_control_event,
                    request_stop=self.request_stop,
                    note=self._note,
                )
                self._spawn(script, "timeline")
            reporting = health.report_health(
                self.config.log.health_interval_s, self._health_figures
            )
            self._spawn(reporting, "health")
            self._spawn(self.usage.run(), "usage")
            if self.config.metrics.textfile is not None or self.config.metrics.listen is not None:
                from pilive.metrics import MetricsExporter  # noqa: PLC0415 - only when asked

                self.metrics = MetricsExporter(self, self.config.metrics)
                self._spawn(self.metrics.run(), "metrics")
            await self._stop.wait()
        finally:
            await self._shutdown()

    def _build(self, loop: asyncio.AbstractEventLoop, wake_model: WakeModel | None) -> None:
        """The parts from wiring, their callbacks pointed at this app."""
        cfg = self.config
        room = wiring.room(cfg)  # the simulated room, when configured: one device for both
        self.echo_plan = wiring.echo_plan(cfg)
        self.playback = wiring.playback(
            cfg,
            self._on_playback_drained,
            backend=room,
            reference_ms=wiring.REFERENCE_MS if self.echo_plan.active else 0,
        )
        self.echo = wiring.echo(
            cfg,
            self.echo_plan,
            self.playback,
            on_chunk=self._on_mic_chunk,
            mic_time=lambda: self.capture.last_callback_adc_s,
        )
        self.capture = wiring.capture(
            cfg, self.echo.submit if self.echo else self._on_mic_chunk, backend=room
        )
        log.info("microphone: %s", self.echo_plan.describe())
        self.timers = TimerKeeper(
            cfg.timers.ring_limit_s,
            cfg.state.directory,
            play_earcon=self.playback.play_earcon,  # an alarm sounds even with earcons off
            on_ringing_changed=lambda: self.household.ringing_changed(),  # noqa: PLW0108 - built below
        )
        self.tools = ToolRunner(
            wiring.tools(
                cfg,
                get_volume_percent=lambda: round(self.playback.volume_percent),
                set_volume_percent=self._set_volume,
                start_new_conversation=lambda: self._do(
                    self.conversation.new_conversation_pressed()
                ),
                timers=self.timers,
            ),
            on_result=self._on_tool_result,
            non_blocking=wiring.non_blocking_tools(cfg),
        )
        self.conversation.background_tools = self.tools.non_blocking_names
        self.session = LiveSession(
            wiring.setup_options(cfg, self.tools.declarations()),
            replay_window_s=cfg.connection.replay_window_s or 0.001,
        )
        self.handle_store = HandleStore(cfg.state.directory)
        self.usage = UsageKeeper(
            cfg.limits.daily_tokens,
            UsageStore(cfg.state.directory),
            on_spent_changed=self._on_limit_changed,
        )
        # `api_key` is the key, or on a fleet device (live.token_url) its token-service credential.
        key, tokens = wiring.link_credentials(cfg, self.api_key)
        self.link = LiveLink(
            self.session,
            key,
            wiring.link_options(cfg),
            on_event=self._on_session_event,
            on_status=self._on_link_status,
            handle_store=self.handle_store,
            tokens=tokens,
        )
        self.camera = wiring.camera(
            cfg,
            on_frame=self._on_frame,
            on_status=lambda state, text: self._note(f"camera: {text}"),
        )
        self.controls = wiring.controls(cfg, loop=loop, on_event=self._on_control_event)
        self.wake = wiring.wake_listener(
            cfg,
            wake_model,
            lambda event: self.household.wake_event(event),  # noqa: PLW0108 - built below
        )
        # Hands-free with a wake word: the microphone stays on the device until the word, or
        # a press. Also when the word cannot be heard here (no package, no model): the owner
        # chose a speaker that does not stream the room, so the button alone opens it then.
        self.conversation.wake_gated = (
            self.conversation.hands_free and cfg.conversation.wake_word != "off"
        )
        if self.conversation.hands_free:
            self.hands_free_audio = HandsFreeAudio(self.link, loop)
        self.household = Household(
            cfg,
            conversation=self.conversation,
            link=self.link,
            capture=self.capture,
            camera=self.camera,
            controls=self.controls,
            carry_out=self._do,
            control_event=self._on_control_event,
            playback=self.playback,
            timers=self.timers,
            note=self._note,
            forget_preroll=self.echo.forget_preroll if self.echo is not None else lambda: None,
            wake=self.wake,
            press_preroll_ms=wiring.press_preroll_ms(cfg),
            send_preroll=self._send_woken_preroll,
        )

    async def _start_hardware(self) -> None:
        if self.echo is not None:
            await self.echo.start()
        if self.wake is not None:
            await self.wake.start()
        await self.household.start_microphone()  # not while the privacy mute is on
        await self.playback.start()
        # Watch the audio threads only while their device claims to work: a device being
        # reopened is handled (and shown) by its supervisor, not by a watchdog restart.
        self.heartbeats.watch(
            "capture",
            _HEARTBEAT_MAX_AGE_S,
            lambda: self.capture.heartbeat_s if self.capture.ok else None,
        )
        self.heartbeats.watch(
            "playback",
            _HEARTBEAT_MAX_AGE_S,
            lambda: self.playback.heartbeat_s if self.playback.ok else None,
        )

    async def _shutdown(self) -> None:
        """STOPPING=1, then LEDs off, streams and socket closed, within the budget."""
        self.notifier.stopping("stopping")
        self._note("stopping")
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if self._end_fallback is not None:
            self._end_fallback.cancel()
        if self.hands_free_audio is not None:
            self.hands_free_audio.close()
        # No processed microphone audio after this (the link closes next). The two DSP threads
        # stop side by side: each waits out a hung library call for at most STOP_WAIT_S, so the
        # whole stop stays inside the unit's TimeoutStopSec.
        dsp = [part.aclose() for part in (self.echo, self.wake) if part is not None]
        await asyncio.gather(*dsp)
        with contextlib.suppress(AttributeError):
            self.link.stop()
        try:
            async with asyncio.timeout(_SHUTDOWN_BUDGET_S):
                for task in self._tasks:
                    if task.get_name() != "link":  # the link closes its socket and returns
                        task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                with contextlib.suppress(AttributeError):
                    await self.household.aclose()
                with contextlib.suppress(AttributeError):
                    await self.tools.aclose()
                with contextlib.suppress(AttributeError):
                    await self.usage.aclose()
                for closer in (getattr(self, "capture", None), getattr(self, "playback", None)):
                    if closer is not None:
                        await closer.aclose()
        except TimeoutError:
            log.error("shutdown took longer than %.0f s; exiting anyway", _SHUTDOWN_BUDGET_S)
        finally:
            if self.controls is not None:
                self.controls.close()

    def _redact(self, text: str) -> str:
        """`text` with the key or credential masked, and the link's ephemeral tokens."""
        text = self.api_key.redact(text)
        link: LiveLink | None = getattr(self, "link", None)
        if link is not None and link.tokens is not None:
            text = link.tokens.redact(text)
        return text

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._stop.is_set():
            return
        exc = task.exception()
        if exc is not None:
            # A part that dies takes the daemon down with a failure exit: systemd restarts it.
            # The text of an exception can quote anything (a header a server echoed back): the
            # key is masked in it and in its traceback.
            trace = "".join(traceback.format_exception(exc))
            log.critical(
                "%s failed: %s; stopping\n%s",
                task.get_name(),
                self._redact(repr(exc)),
                self._redact(trace),
            )
            self.failure = f"{task.get_name()} failed ({type(exc).__name__})"
            self.request_stop()

    # -- inputs --------------------------------------------------------------------------------

    def _on_control_event(self, event: ControlEvent) -> None:
        if self.household.takes(event):
            return
        if isinstance(event, ButtonPressed):
            self.stats.presses += 1
            self.stats.last_press_s = event.at
            self._note("button pressed")
            was_open = self.conversation.mic_open
            self._do(self.conversation.button_pressed(event.at))
            if self.conversation.hands_free and not was_open and self.conversation.mic_open:
                self.household.turn_started()  # the press woke a wake-gated microphone
                self._send_woken_preroll()
        elif isinstance(event, ButtonReleased):
            self.stats.last_release_s = event.at
            self._note("button released")
            self._do(self.conversation.button_released(event.at))
        elif isinstance(event, NewConversationPressed):
            self._note("new conversation")
            self._do(self.conversation.new_conversation_pressed())
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        deadline = self.conversation.next_deadline
        if deadline is not None:
            self._tick_handle = asyncio.get_running_loop().call_at(deadline, self._tick)

    def _tick(self) -> None:
        self._tick_handle = None
        self._do(self.conversation.tick(asyncio.get_running_loop().time()))
        self._schedule_tick()

    def _on_mic_chunk(self, pcm: bytes) -> None:
        if self.household.muted:
            # Captured as the mute began (the device is being closed): dropped, and out of the
            # echo path's pre-roll too. A turn the mute ended is ended now, without it.
            if self.echo is not None:
                self.echo.forget_preroll()
            if self._end_after_chunk:
                self._send_activity_end()
            return
        if self.conversation.mic_open:
            if self.hands_free_audio is not None:
                self.hands_free_audio.send(pcm)  # ends the stream when the chunks stop
            else:
                self.link.send_audio(pcm)
        elif self._end_after_chunk:
            # The chunk that holds the audio up to the release, then activityEnd.
            self.link.send_audio(pcm)
            self._send_activity_end()
        # The follow-up window's ear (it sends nothing itself); after the sending above, so a
        # turn it starts takes this chunk in its pre-roll only once.
        self.household.hear(pcm)

    def _on_frame(self, jpeg: bytes) -> None:
        if self.household.muted:
            return  # the camera is being closed; nothing it saw goes out
        self.link.send_video(jpeg)
        self.stats.frames_sent += 1
        self.stats.frame_bytes_sent += len(jpeg)
        self._note(f"camera frame sent ({len(jpeg) // 1024} kB)")

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, AudioChunk):
            # The conversation's PlayAudio for this chunk comes out of the call below.
            self._answer_rate_hz = event.rate_hz
        if isinstance(event, AudioChunk) and self._awaiting_answer:
            self._awaiting_answer = False
            latency_s = time.monotonic() - self.stats.last_activity_end_s
            self.stats.answer_latencies_s.append(latency_s)
            if self.metrics is not None:
                self.metrics.first_answer(latency_s)
            self._note(f"first answer audio {latency_s * 1000:.0f} ms after activityEnd")
        elif isinstance(event, GoAway):
            self._note(f"server goAway: {event.time_left_s:g} s left; handing over")
        elif isinstance(event, UsageMetadata):
            self.usage.count(event)
        self._do(self.conversation.session_event(event))

    def _on_link_status(self, status: LinkStatus) -> None:
        self._note(f"link {status.describe()}")
        if self.camera is not None:
            self.camera.connected_changed(status.state is LinkState.CONNECTED)
        self._do(self.conversation.link_changed(status.state))
        if self.hands_free_audio is not None:
            self.hands_free_audio.link_changed(status.state)
        self.household.link_changed()
        self._update_status()

    def _on_limit_changed(self, spent: bool) -> None:
        self._note("daily token limit spent" if spent else "daily token limit renewed")
        self._do(self.conversation.limit_changed(spent))
        self._update_status()

    def _on_playback_drained(self) -> None:
        self._note("answer played out")
        self._do(self.conversation.playback_drained())
        self.household.answer_played()

    def _on_tool_result(self, result: ToolResult) -> None:
        self._note(f"tool {result.name} finished")
        self.link.send_tool_response([result.function_response()])
        interrupts = result.scheduling == "INTERRUPT"
        self._do(self.conversation.tool_finished(result.call_id, interrupts=interrupts))

    def _set_volume(self, percent: int) -> None:
        self.household.set_volume(percent, "the model")  # kept across restarts
        self._note(f"volume set to {percent} %")

    # -- actions -------------------------------------------------------------------------------

    def _do(self, actions: list[Action]) -> None:
        for action in actions:
            self._carry_out(action)

    def _carry_out(self, action: Action) -> None:
        """Every Action has a case: a new one that is not carried out fails mypy (assert_never)."""
        match action:
            case PlayAudio():
                self.playback.write(action.pcm, self._answer_rate_hz)
            case StartActivity():
                if self._end_after_chunk:
                    # The last press's activityEnd still waits for its mic chunk (a re-press
                    # within one chunk, or a bounce): it goes first.
                    self._send_activity_end()
                self.link.send_activity_start()
                self.household.turn_started()
                # Processed audio when the echo path runs: the turn must not hear the speaker.
                preroll = self.household.preroll_for_turn(
                    (self.echo or self.capture).take_preroll()
                )
                for chunk in preroll:
                    self.link.send_audio(chunk)
                self.stats.turns += 1
                self.stats.last_activity_start_s = time.monotonic()
                self._note(
                    f"activityStart sent with {len(preroll) * self.capture.chunk_ms} ms pre-roll"
                )
            case EndActivity():
                self._end_after_chunk = True
                if self.echo is None:
                    # What the microphone gave since its last whole chunk goes now, activityEnd
                    # right behind it: the release does not wait for a chunk to fill.
                    partial = self.capture.take_partial()
                    if partial:
                        self.link.send_audio(partial)
                    self._send_activity_end()
                else:
                    # The echo thread works in 10 ms frames: the end follows its next chunk, or
                    # two chunk periods at most (a dead microphone must not hold the turn open).
                    self._end_fallback = asyncio.get_running_loop().call_later(
                        2 * self.capture.chunk_ms / 1000, self._send_activity_end
                    )
            case ShowState():
                shown = self.household.shown(action.state)
                if self.controls is not None:
                    self.controls.show(shown)
                self._note(f"LED {shown.value}")
                self._update_status()
            case PlayEarcon():
                self._note(f"earcon {action.earcon.value}")
                if self.config.audio.output.earcons:
                    self.playback.play_earcon(action.earcon.value)
            case FlushPlayback():
                self.playback.flush()
                if action.barge_in:
                    self.stats.barge_ins += 1
                    self._note("barge-in: speaker flushed")
                else:
                    self._note("speaker flushed: a tool's result interrupts the answer")
            case EndOfAnswer():
                self.playback.end_of_answer()
            case CameraActivity():
                if self.camera is not None:
                    if action.active:
                        self.camera.activity_started()
                    else:
                        self.camera.activity_ended()
            case RunTool():
                self.stats.tool_calls += 1
                self._note(f"tool call {action.name}({action.args})")
                started = self.tools.start(action.call_id, action.name, action.args)
                if started is None and action.call_id not in self.tools.running:
                    # Ignored and nothing of that id runs: no response will come, so stop waiting.
                    self._do(self.conversation.tool_finished(action.call_id))
            case CancelTools():
                self.tools.cancel(action.call_ids)
            case NewConversation():
                self.link.new_conversation()
            case Journal():
                self._journal(action)
            case SendText():
                self._send_text(action.text)
            case _:
                assert_never(action)

    def _send_woken_preroll(self) -> None:
        """Hands-free, the wake word (or a press) opened the microphone: what it kept from the
        word on (a press: its own pre-roll) goes first, then the chunks as they come."""
        preroll = self.household.preroll_for_turn((self.echo or self.capture).take_preroll())
        for chunk in preroll:
            if self.hands_free_audio is not None:
                self.hands_free_audio.send(chunk)
        preroll_ms = len(preroll) * self.capture.chunk_ms
        self._note(f"microphone woken with {preroll_ms} ms pre-roll")

    def _send_text(self, text: str) -> None:
        """A typed turn: in push-to-talk it is marked like a press, without microphone audio."""
        self.household.turn_started()
        if self.conversation.hands_free:
            self.link.send_text(text)
        else:
            if self._end_after_chunk:
                self._send_activity_end()  # the last press's end goes first
            self.link.send_activity_start()
            self.link.send_text(text)
            self.link.send_activity_end()
        self.stats.turns += 1
        self._note(f"typed turn sent ({len(text)} characters)")

    def _send_activity_end(self) -> None:
        if self._end_fallback is not None:
            self._end_fallback.cancel()
            self._end_fallback = None
        if not self._end_after_chunk:
            return
        self._end_after_chunk = False
        self.link.send_activity_end()
        self.stats.last_activity_end_s = time.monotonic()
        self._awaiting_answer = True
        self._note("activityEnd sent")

    def _journal(self, entry: Journal) -> None:
        if entry.kind.endswith("transcript") and not self.config.log.transcripts:
            return
        if entry.kind == "thought":
            self._journal_thought(entry.text)
            return
        self.household.journal(entry)
        fields = event_fields(entry.kind, text=entry.text, **dict(entry.fields))
        log.info("%s: %s", entry.kind, entry.text, extra=fields)
        if entry.kind in (
            "output_transcript",
            "input_transcript",
            "turn_lost",
            "no_answer",
            "context_lost",
        ):
            self._note(f"{entry.kind.replace('_', ' ')}: {entry.text}")

    def _journal_thought(self, text: str) -> None:
        """A thought summary is logged, never spoken: one line every few seconds at info (the
        server decides how many come), the others at debug; none without log.transcripts, since
        thoughts retell what the user said."""
        if not self.config.log.transcripts:
            return
        if self._thought_lines.allow("thought"):
            suffix = self._thought_lines.suffix("thought")
            log.info("thought: %s%s", text, suffix, extra=event_fields("thought", text=text))
        else:
            log.debug("thought: %s", text, extra=event_fields("thought", text=text))

    # -- status ---------------------------------------------------------------------------------

    def _status_text(self) -> str:
        state = self.conversation.state
        if state in (
            ApplianceState.OFFLINE,
            ApplianceState.CONFIG_FAULT,
            ApplianceState.CONNECTING,
        ):
            text = self.link.status.describe()
        elif state is ApplianceState.MUTED:
            text = "muted (microphone and camera off)"
        elif state is ApplianceState.LIMIT_SPENT:
            text = self.usage.status() or state.value
        else:
            text = state.value
        problems = [
            f"{name}: {part.error_message}"
            for name, part in (("microphone", self.capture), ("speaker", self.playback))
            if not part.ok and part.error_message
        ]
        ringing = self.household.ringing_text()
        if ringing:
            problems.insert(0, ringing)
        if self.household.muted and state is not ApplianceState.MUTED:
            problems.append("muted (microphone and camera off)")
        if self.household.problem:
            problems.append(f"mute and volume not kept across restarts: {self.household.problem}")
        if self.handle_store.problem:
            problems.append(f"conversation not kept across restarts: {self.handle_store.problem}")
        if self.link.problem:
            problems.append(self.link.problem)
        echo_plan = self.echo.plan if self.echo is not None else self.echo_plan
        if echo_plan.mode == "half-duplex":
            # No talking over the answer: said where the user looks (configured, or a fallback,
            # also one taken at run time when the canceller failed).
            problems.append(echo_plan.describe())
        if self.config.conversation.wake_word != "off" and self.wake is None:
            problems.append(wake_word.describe(self.config.conversation.wake_word))
        elif self.wake is not None and self.wake.failure is not None:
            problems.append(f"wake word off: {self.wake.failure}")
        usage = self.usage.status()
        if usage and usage != text:
            problems.append(usage)
        return "; ".join([text, *problems])

    def _update_status(self) -> None:
        text = self._status_text()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)

    def _health_figures(self) -> dict[str, int | float]:
        """The parts' counters for the health line (health.report_health adds the process's)."""
        ring = self.playback.ring
        return {
            "underruns": ring.underruns if ring is not None else 0,
            "answer_dropped_s": round(self.playback.answer_dropped_s, 1),
            "overflows": self.capture.overflows,
            "reconnects": sum(self.link.counters.reconnects_by_cause.values()),
            "turns": self.stats.turns,
            **self.usage.health_figures(),
        }

    def _note(self, text: str) -> None:
        if self.on_timeline is not None:
            self.on_timeline(time.monotonic() - self.stats.started_s, text)
        else:
            log.debug("%s", text)


def install_signal_handlers(app: App) -> None:
    """SIGTERM and SIGINT stop cleanly; SIGHUP is logged and ignored (no reload: restart)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.request_stop)
    loop.add_signal_handler(signal.SIGHUP, _ignore_hangup)


def _ignore_hangup() -> None:
    # The default action would kill the daemon without clean-up (LEDs, streams, socket). There is
    # no reload: the configuration is read once, so a change needs a restart.
    log.warning("SIGHUP ignored: pilive does not reload its configuration; restart it instead")
