"""The controls a household uses around the conversation, and the control socket that reaches them.

`App` keeps the conversation and its parts; this module keeps what sits beside them: the privacy
mute (who holds it is `privacy.PrivacyMute`'s business; closing the microphone and camera at the
source is done here), a ringing timer (a press stops it; the LED shows it over any state), the
follow-up window after an answer (its speech and silence become a press and a release), the
wake word (a press; in push-to-talk the end of the question is its release), the answers to
the control socket (`pilive ctl`), and the record of the last turn that `status` shows. Every
request is answered on the event loop at once; what it changes goes through the same paths as
the buttons (a socket `press` is a `ButtonPressed`), so a script cannot do what a person could
not, and the mute overrides the socket as it overrides the button.

What must survive a restart (the mute, the volume) is kept in the state directory
(`settings.json`). A file that cannot be read does not unmute: the daemon starts muted and says
why, since an unreadable file may have held a mute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pilive.announcements import Announcements, Waiting
from pilive.audio.capture import Capture
from pilive.audio.playback import Playback
from pilive.config import Config, Secret
from pilive.config.apikey import read_secret_file
from pilive.control.protocol import Request, ok, refused
from pilive.control.server import ControlServer, ControlSocketError
from pilive.controls.events import (
    ApplianceState,
    ButtonPressed,
    ButtonReleased,
    ControlEvent,
    MutePressed,
    MuteSwitched,
    NewConversationPressed,
    VolumeStepped,
)
from pilive.conversation import Action, Conversation, Journal, PlayEarcon, ShowState
from pilive.follow_up import FollowUpWindow, Heard
from pilive.kept import KeptJson
from pilive.live.events import LinkState
from pilive.mqtt import MqttBridge
from pilive.net.connection import LiveLink
from pilive.parts import Controls
from pilive.privacy import PrivacyMute
from pilive.state import LoadOutcome
from pilive.timer_keeper import TimerKeeper
from pilive.wake_word import WakeEvent, trim_preroll

if TYPE_CHECKING:
    from pilive.audio.wake import WakeWordListener  # its library: only for a configured word
    from pilive.camera import CameraStreamer  # Pillow underneath: only for a configured camera

log = logging.getLogger("pilive")

SETTINGS_FILE_NAME = "settings.json"
MAX_TRANSCRIPT_CHARS = 2000
"""Of each side of the last turn that `status` shows: the newest words are kept."""


@dataclass(slots=True)
class LastTurn:
    """What was heard and said in the newest turn (transcripts, as far as they came)."""

    heard: str = ""
    said: str = ""
    at_unix_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"heard": self.heard, "said": self.said, "at_unix_s": round(self.at_unix_s, 3)}


class Household:
    """Answers control requests and keeps the last turn; built by `App` once its parts exist.

    `carry_out` runs conversation actions as the app does; `control_event` takes an event as if
    it came from the buttons.
    """

    def __init__(
        self,
        config: Config,
        *,
        conversation: Conversation,
        link: LiveLink,
        capture: Capture,
        playback: Playback,
        timers: TimerKeeper,
        note: Callable[[str], None] = lambda text: None,
        forget_preroll: Callable[[], None] = lambda: None,
        camera: CameraStreamer | None,
        controls: Controls | None,
        carry_out: Callable[[list[Action]], None],
        control_event: Callable[[ControlEvent], None],
        wall_clock: Callable[[], float] = time.time,
        wake: WakeWordListener | None = None,
        press_preroll_ms: int = 0,
        send_preroll: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.conversation = conversation
        self.link = link
        self.capture = capture
        self._forget_preroll = forget_preroll
        """Drops audio held for the next turn's pre-roll beyond the capture's own (the echo
        path's): nothing heard before a mute may open a turn after it."""
        self.camera = camera
        self.controls = controls
        self._carry_out = carry_out
        self._control_event = control_event
        self.playback = playback
        self.timers = timers
        self._note = note
        self._timers_task: asyncio.Task[None] | None = None
        self._swallow_release = False  # the press that stopped a ringing timer is not a turn
        conv, vad = config.conversation, config.live.vad
        self.follow_up: FollowUpWindow | None = None
        if conv.follow_up_s > 0 and not conversation.hands_free:
            self.follow_up = FollowUpWindow(
                conv.follow_up_s,
                sensitivity=vad.start_sensitivity,
                prefix_padding_ms=vad.prefix_padding_ms,
                silence_ms=vad.silence_duration_ms,
            )
        self._follow_up_timer: asyncio.TimerHandle | None = None
        self.wake = wake
        self._send_preroll = send_preroll
        """Hands-free: sends the woken turn's pre-roll (from the word on) as the app sends audio."""
        chunk_ms = config.audio.input.chunk_ms
        self._press_preroll_bytes = -(-press_preroll_ms // chunk_ms) * capture.chunk_bytes
        self._wake_start: int | None = None  # where the word's turn begins (listener.fed_bytes)
        self._wake_turn: int | None = None  # turns_started when the word pressed (push-to-talk)
        self._wake_end_waits = False  # the question ended before the word's press became a turn
        self.displayed: ApplianceState | None = None  # what the LED shows now
        self.mqtt: MqttBridge | None = None
        self._mqtt_task: asyncio.Task[None] | None = None
        self._wall_clock = wall_clock
        self.last_turn: LastTurn | None = None
        self._heard_last = False  # the newest transcript was the user's (a new turn follows it)
        self.control: ControlServer | None = None
        self.privacy = PrivacyMute()
        self.settings = KeptJson(
            config.state.directory,
            SETTINGS_FILE_NAME,
            kind="settings file",
            loss="the mute and the volume will not be kept across restarts",
            kept="the mute and the volume are kept",
        )
        self._mic_wanted = False  # the app has started its devices: the microphone may open
        self._mic_open = False
        self._mic_task: asyncio.Task[None] | None = None
        self.announcements = Announcements()
        self._announcing: asyncio.Handle | None = None  # _say_waiting is scheduled
        self._announcement_due: asyncio.TimerHandle | None = None  # when the oldest expires

    @property
    def muted(self) -> bool:
        """The privacy mute is on: no microphone audio or camera frame may go out."""
        return self.privacy.muted

    @property
    def problem(self) -> str | None:
        """Why the mute (and volume) will not survive a restart, or None."""
        return self.settings.problem

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Take up what was kept (before any device opens), then open the control socket; one
        that cannot be opened is logged, and talking goes on."""
        kept = await asyncio.to_thread(self.settings.load)
        was_muted = self.privacy.muted  # a mute switch already closed at boot
        if kept.outcome is LoadOutcome.CORRUPT:
            log.warning("%s; starting muted to be safe: unmute to go on", kept.detail)
            self.privacy.remote(True)
        elif kept.outcome is LoadOutcome.LOADED:
            if isinstance(kept.data.get("mute"), dict):
                self.privacy.restore(kept.data["mute"])
            volume = kept.data.get("volume_percent")
            if isinstance(volume, int) and not isinstance(volume, bool) and 0 <= volume <= 100:
                self.playback.volume_percent = volume
                log.info("volume %d %% (kept across the restart)", volume)
        if self.privacy.muted and not was_muted:
            log.info("the privacy mute is on (%s), kept across the restart", self.privacy.source)
            # Quietly: no earcon for a state the device was already in.
            actions = self.conversation.mute_changed(True)
            self._carry_out([a for a in actions if not isinstance(a, PlayEarcon)])
            self._sources_follow_mute()
        await self.timers.start()
        self._timers_task = asyncio.get_running_loop().create_task(self.timers.run(), name="timers")
        self._timers_task.add_done_callback(_log_failure)
        await self._open_control_socket()
        if self.config.mqtt.enabled:
            await self._start_mqtt()

    async def _start_mqtt(self) -> None:
        """Home Assistant through MQTT discovery (mqtt.py); the broker is retried for ever."""
        mqtt = self.config.mqtt
        password = None
        if mqtt.password_file is not None:
            text = await asyncio.to_thread(
                read_secret_file,
                mqtt.password_file,
                "mqtt.password_file",
                check_mode=True,
                what="MQTT password",
            )
            password = Secret(text, "mqtt.password_file")
        self.mqtt = MqttBridge(mqtt, self, password=password, shown=lambda: self.displayed)
        self._mqtt_task = asyncio.get_running_loop().create_task(self.mqtt.run(), name="mqtt")
        self._mqtt_task.add_done_callback(_log_failure)

    def _changed(self) -> None:
        """Something Home Assistant shows may have changed."""
        if self.mqtt is not None:
            self.mqtt.changed()

    async def start_microphone(self) -> None:
        """The app starts its devices: open the microphone, unless muted (then at unmute)."""
        self._mic_wanted = True
        await self._sync_microphone()

    async def _open_control_socket(self) -> None:
        control = self.config.control
        if not control.enabled:
            return
        server = ControlServer(control.socket, self.handle)
        try:
            await server.start()
        except ControlSocketError as exc:
            log.warning("no control socket: %s; pilive ctl will not reach this daemon", exc)
            return
        self.control = server

    async def aclose(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            await control.aclose()
        self._cancel_follow_up_timer()
        for handle in (self._announcing, self._announcement_due):
            if handle is not None:
                handle.cancel()
        self._announcing = self._announcement_due = None
        for dropped in self.announcements.clear():
            self._dropped(dropped, "the daemon is stopping")
        for task in (self._mqtt_task, self._mic_task, self._timers_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.settings.flush()
        await self.timers.aclose()

    # -- the privacy mute ----------------------------------------------------------------------

    def takes(self, event: ControlEvent) -> bool:
        """Handle the household's own control events, and a press that stops a ringing timer
        (with its release); False for what the conversation should see."""
        # A tap (or a new conversation) ends a pending press without a state to show: waiting
        # announcements are looked at after every event, once the conversation has taken it.
        self._say_waiting_soon()
        if isinstance(event, ButtonPressed) and self.timers.ringing:
            self.timers.stop_ringing()
            self._swallow_release = True
            return True
        window = self.follow_up
        if isinstance(event, ButtonPressed) and window and window.open and not window.speaking:
            self._close_follow_up()  # a press takes over from the window
        if isinstance(event, ButtonReleased) and self._swallow_release:
            self._swallow_release = False
            return True
        if isinstance(event, MutePressed):
            if self.privacy.button_pressed():
                self._mute_changed("the mute button")
            return True
        if isinstance(event, MuteSwitched):
            if self.privacy.switch_changed(event.engaged):
                self._mute_changed("the mute switch")
            return True
        if isinstance(event, VolumeStepped):
            step = self.config.audio.output.volume_step_percent * event.step
            current = round(self.playback.volume_percent)
            self.set_volume(max(0, min(100, current + step)), "a volume button", tick=True)
            return True
        return False

    # -- the follow-up window -------------------------------------------------------------------

    def answer_played(self) -> None:
        """An answer played out: open the follow-up window, if configured and nothing is in the
        way (muted, a timer ringing, offline, a turn already under way)."""
        window = self.follow_up
        if window is None or self.privacy.muted or self.timers.ringing:
            return
        if self.conversation.state is not ApplianceState.IDLE:
            return
        if self.link.status.state is not LinkState.CONNECTED:
            return
        loop = asyncio.get_running_loop()
        window.start(loop.time())
        self._follow_up_timer = loop.call_later(window.window_s, self._follow_up_expired)
        self._note(
            f"listening {window.window_s:g} s for a follow-up, without a press "
            f"(speech above {window.threshold_dbfs:.0f} dBFS)"
        )
        self._carry_out([ShowState(self.conversation.state)])

    def hear(self, pcm: bytes) -> None:
        """A microphone chunk (not muted): the wake word's listener hears every one, the
        follow-up window those no turn is sending."""
        wake = self.wake
        if wake is not None:
            conversation = self.conversation
            if not conversation.turn_pending and self._wake_turn == conversation.turns_started:
                # The word's press went without a turn: nothing of it may end or date a later one.
                self._wake_start = self._wake_turn = None
                self._wake_end_waits = False
            if wake.waiting and not conversation.turn_pending:
                wake.rearm()  # the word's turn is over (or none started): the next may come
            wake.submit(pcm)
        window = self.follow_up
        if window is None:
            return
        now = asyncio.get_running_loop().time()
        sounding = self.conversation.state is ApplianceState.SPEAKING or self.timers.ringing
        for heard in window.hear(pcm, room_only=not sounding):  # the room's noise floor too
            if heard is Heard.PRESS:
                self._cancel_follow_up_timer()
                self._note("follow-up: speech heard, the turn starts")
                self._control_event(ButtonPressed(now))
            else:
                self._note("follow-up: silence, the turn ends")
                self._control_event(ButtonReleased(now))

    # -- the wake word ----------------------------------------------------------------------------

    def wake_event(self, event: WakeEvent) -> None:
        """The listener heard the word (a press) or, in push-to-talk, the end of the question
        (its release). Nothing while muted; a word while a turn is under way is not a turn."""
        now = asyncio.get_running_loop().time()
        conversation = self.conversation
        if self.privacy.muted:
            return
        if event.kind == "end":
            turn = self._wake_turn
            if (
                turn is not None
                and conversation.turns_started == turn
                and conversation.turn_pending
            ):
                # The word's press is not a turn yet (min_press_ms outlasted the question): a
                # release now would be a tap and lose the question, so the turn ends as it starts.
                self._wake_end_waits = True
                return
            if turn is not None and conversation.turns_started == turn + 1:
                self._end_wake_turn()
            self._wake_turn = None
            return
        if conversation.turn_pending:
            return
        self._note("wake word heard")
        if self.timers.ringing:  # it stops the ringing, as a tap of the button does
            self._control_event(ButtonPressed(now))
            self._control_event(ButtonReleased(now))
            return
        self._wake_start, self._wake_turn = event.offset_bytes, conversation.turns_started
        if conversation.hands_free:
            self._carry_out(conversation.wake_word_heard(now))
            if conversation.mic_open:
                self.turn_started()
                self._send_preroll()
        else:
            self._control_event(ButtonPressed(now))
        if not conversation.turn_pending:
            # Refused (offline, the daily limit): the word's start must not stretch the
            # pre-roll of a later press back to it.
            self._wake_start = self._wake_turn = None

    def _end_wake_turn(self) -> None:
        """The question after the word ended: its release (on the loop, after the actions that
        started the turn and sent its pre-roll, when it waited for the turn to start)."""
        self._wake_end_waits = False
        turn, self._wake_turn = self._wake_turn, None
        if turn is None or self.conversation.turns_started != turn + 1 or self.privacy.muted:
            return
        self._note("wake word: silence, the turn ends")
        self._control_event(ButtonReleased(asyncio.get_running_loop().time()))

    def preroll_for_turn(self, chunks: list[bytes]) -> list[bytes]:
        """The pre-roll a turn sends: from the wake word's first loud frame on for the turn the
        word started, else a press's own (the microphone keeps more when a wake word listens)."""
        start, self._wake_start = self._wake_start, None
        turn = self._wake_turn
        if (
            self.wake is None  # also a configured word whose listener could not start
            or start is None
            or turn is None
            or self.conversation.turns_started != turn + 1
        ):
            return trim_preroll(chunks, self._press_preroll_bytes)
        return trim_preroll(chunks, self.wake.fed_bytes - start)

    def _follow_up_expired(self) -> None:
        self._follow_up_timer = None
        window = self.follow_up
        if window is not None and window.expired(asyncio.get_running_loop().time()):
            self._note("follow-up window closed: nothing was said")
            self._carry_out([ShowState(self.conversation.state)])

    def _close_follow_up(self) -> None:
        if self.follow_up is not None:
            self.follow_up.close()
        self._cancel_follow_up_timer()
        self._carry_out([ShowState(self.conversation.state)])

    def _cancel_follow_up_timer(self) -> None:
        if self._follow_up_timer is not None:
            self._follow_up_timer.cancel()
            self._follow_up_timer = None

    # -- timers ----------------------------------------------------------------------------------

    def shown(self, state: ApplianceState) -> ApplianceState:
        """What the LED shows for the conversation's `state`: a ringing timer comes first, then
        an open follow-up window over idle. The app shows it, and Home Assistant is told."""
        window = self.follow_up
        listening = window is not None and window.open and not window.speaking
        if self.timers.ringing:
            shown = ApplianceState.RINGING
        elif listening and state is ApplianceState.IDLE:
            shown = ApplianceState.FOLLOW_UP
        else:
            shown = state
        if shown is not self.displayed:
            self.displayed = shown
            self._changed()
        if shown in (ApplianceState.IDLE, ApplianceState.MUTED):
            self._say_waiting_soon()
        return shown

    def ringing_changed(self) -> None:
        """A timer began or stopped ringing: the LED and STATUS follow."""
        text = self.ringing_text()
        self._note(text or "ringing stopped")
        self._carry_out([ShowState(self.conversation.state)])

    def ringing_text(self) -> str:
        """For STATUS: what rings, or ""."""
        ringing = self.timers.ringing
        if not ringing:
            return ""
        names = ", ".join(t.label or t.id for t in ringing)
        return f"ringing: {names} (press to stop)"

    # -- the volume ------------------------------------------------------------------------------

    def set_volume(self, percent: int, by: str, *, tick: bool = False) -> None:
        """The speaker's software volume (the ring buffer's gain), kept across restarts. `tick`:
        a short note at the new level, unless an answer is playing (it shows the level itself)."""
        self.playback.volume_percent = percent
        log.info("volume %d %% by %s", percent, by)
        self._note(f"volume {percent} % ({by})")
        if (
            tick
            and self.config.audio.output.earcons
            and self.conversation.state is not ApplianceState.SPEAKING
        ):
            self.playback.play_earcon("tick")
        self._save()
        self._changed()

    def set_muted_remotely(self, on: bool) -> dict[str, object]:
        """`mute on|off` from the socket (or Home Assistant): it never lifts the device's mute."""
        changed, why = self.privacy.remote(on)
        if why is not None:
            return refused(why)
        if changed:
            self._mute_changed("a remote request")
        else:
            self._save()  # who holds the mute may have changed (remote added under the button)
        return ok(mute=self.privacy.describe())

    def _mute_changed(self, by: str) -> None:
        muted = self.privacy.muted
        if muted and self.follow_up is not None and self.follow_up.open:
            self._close_follow_up()  # nothing may be heard while muted
        if muted:
            self._forget_preroll()  # at once; again once the device is closed (_sync_microphone)
        if muted and self.wake is not None:
            self.wake.reset()  # nor may anything heard before the mute date a word after it
            self._wake_start = self._wake_turn = None
            self._wake_end_waits = False
        log.info("privacy mute %s by %s", "on" if muted else "off", by)
        self._note(f"privacy mute {'on' if muted else 'off'} ({by})")
        self._carry_out(self.conversation.mute_changed(muted))
        self._sources_follow_mute()
        self._save()
        self._changed()

    def _sources_follow_mute(self) -> None:
        """Camera and privacy LED at once; the microphone's device closes (or opens) on a task."""
        muted = self.privacy.muted
        if self.controls is not None:
            self.controls.show_muted(muted)
        if self.camera is not None:
            if muted:
                self.camera.suspend()
            else:
                self.camera.resume()
        if self._mic_wanted and (self._mic_task is None or self._mic_task.done()):
            self._mic_task = asyncio.get_running_loop().create_task(
                self._sync_microphone(), name="microphone mute"
            )

    async def _sync_microphone(self) -> None:
        """Bring the microphone's device to what the mute wants (again, if it changed meanwhile)."""
        while self._mic_wanted and self._mic_open == self.privacy.muted:
            if self.privacy.muted:
                await self.capture.pause()
                self._forget_preroll()
                self._mic_open = False
            else:
                await self.capture.resume()
                self._mic_open = True

    def _save(self) -> None:
        self.settings.save_soon(self._kept())

    def _kept(self) -> dict[str, object]:
        return {
            "mute": self.privacy.to_json(),
            "volume_percent": round(self.playback.volume_percent),
        }

    # -- the control socket --------------------------------------------------------------------

    def handle(self, request: Request) -> dict[str, object]:
        """One request from the control socket, answered at once."""
        now = asyncio.get_running_loop().time()
        match request.command:
            case "status":
                return ok(status=self.status())
            case "press":
                if self.timers.ringing:
                    self._control_event(ButtonPressed(now))  # stops it, as the button does
                    return ok(stopped_ringing=True)
                if self.privacy.muted:
                    return refused(f"muted by {self.privacy.holder}; no turn starts")
                self._control_event(ButtonPressed(now))
                return ok()
            case "release":
                self._control_event(ButtonReleased(now))
                return ok()
            case "new-conversation":
                self._control_event(NewConversationPressed(now))
                return ok()
            case "say":
                assert request.text is not None
                return self.say(request.text)
            case "volume":
                assert request.percent is not None
                self.set_volume(request.percent, "a remote request")
                return ok(volume=request.percent)
            case "mute":
                assert request.on is not None
                return self.set_muted_remotely(request.on)
        return refused(f"unknown command {request.command!r}")

    def say(self, text: str) -> dict[str, object]:
        """Send `text` as a turn of its own (`realtimeInput.text`): the model speaks about it.
        While the speaker is not free (offline, a turn held or answered, a timer ringing, the
        follow-up window waiting for a reply) or behind others still waiting, it waits
        (announcements.py) and is said in order once the speaker is free: an automation's news
        never cuts the user's own answer."""
        if self.conversation.limit_spent:
            return refused("the daily token limit is spent; nothing was sent")
        why = "announcements before it are still waiting" if self.announcements else self._busy()
        if why is None:
            actions = self.conversation.text_turn(text)
            if actions is not None:
                self._carry_out(actions)
                return ok()
            why = "the button is held for a turn"
        now_s = asyncio.get_running_loop().time()
        self._expire(now_s)
        if not self.announcements.add(text, now_s):
            return refused(
                f"{self.announcements.max_waiting} announcements are already waiting; "
                "this one was not queued"
            )
        log.info("announcement queued (%s): it is said when the speaker is free", why)
        self._note(f"announcement queued ({why})")
        self._say_waiting_soon()
        self._changed()
        return ok(queued=len(self.announcements), waiting_for=why)

    def _busy(self) -> str | None:
        """Why an announcement cannot be said now, or None: the speaker is connected and idle
        (or muted: a typed turn sends no microphone audio) with no turn held."""
        link = self.link.status
        if link.state is not LinkState.CONNECTED:
            return f"not connected: {link.describe()}"
        if self.conversation.turn_pending:
            return "the button is held for a turn"
        shown = self.displayed or self.conversation.state
        if shown not in (ApplianceState.IDLE, ApplianceState.MUTED):
            return f"the speaker is busy: {shown.value}"
        return None

    def link_changed(self) -> None:
        """The link came up (or went): waiting announcements may be said now."""
        self._say_waiting_soon()

    def _say_waiting_soon(self) -> None:
        """Look at the waiting announcements on the loop's next turn (not inside the action or
        event that prompted it)."""
        if self.announcements and self._announcing is None:
            loop = asyncio.get_running_loop()
            self._announcing = loop.call_soon(self._say_waiting)

    def _say_waiting(self) -> None:
        """Say the oldest waiting announcement if the speaker is free: connected, idle (or
        muted: a typed turn sends no microphone audio), no turn held, no timer ringing and no
        follow-up window open. Its answer playing out brings the next one here again."""
        self._announcing = None
        self._say_oldest()
        self._expire_when_due()

    def _say_oldest(self) -> None:
        self._expire(asyncio.get_running_loop().time())
        waiting = self.announcements.next()
        if waiting is None:
            return
        if self.conversation.limit_spent:
            for dropped in self.announcements.clear():
                self._dropped(dropped, "the daily token limit is spent")
            self._changed()
            return
        if self._busy() is not None:
            return
        actions = self.conversation.text_turn(waiting.text)
        if actions is None:
            return
        self.announcements.taken()
        waited_s = asyncio.get_running_loop().time() - waiting.queued_at_s
        log.info("announcement said after waiting %.1f s", waited_s)
        self._note(f"announcement said after waiting {waited_s:.1f} s")
        self._carry_out(actions)
        self._changed()

    def _expire(self, now_s: float) -> None:
        stale = self.announcements.expire(now_s)
        for waiting in stale:
            self._dropped(waiting, f"it waited longer than {self.announcements.keep_s:g} s")
        if stale:
            self._changed()

    def _expire_when_due(self) -> None:
        """Look again when the oldest's time is up, so it is dropped then (and status stops
        counting it) even if the speaker stays busy or offline and nothing else looks."""
        if self._announcement_due is not None:
            self._announcement_due.cancel()
            self._announcement_due = None
        oldest = self.announcements.next()
        if oldest is not None:
            self._announcement_due = asyncio.get_running_loop().call_at(
                oldest.queued_at_s + self.announcements.keep_s, self._announcement_expires
            )

    def _announcement_expires(self) -> None:
        self._announcement_due = None
        self._say_waiting_soon()

    def _dropped(self, waiting: Waiting, why: str) -> None:
        """Logged with its words only where transcripts are (log.transcripts)."""
        words = f": {waiting.text[:80]!r}" if self.config.log.transcripts else ""
        log.warning("announcement dropped, never said (%s)%s", why, words)

    def status(self) -> dict[str, object]:
        """What `pilive ctl status` prints: state, link, mute, volume, timers, the last turn and,
        with [mqtt] on, whether Home Assistant's broker is reached."""
        link = self.link.status
        shown: dict[str, object] = {
            "state": (self.displayed or self.conversation.state).value,
            "link": {"state": link.state.value, "detail": link.describe()},
            "mute": self.privacy.describe(),
            "volume": round(self.playback.volume_percent),
            "timers": self.timers.book.listing(self.timers.clock(), self.timers.tz),
            "last_turn": None if self.last_turn is None else self.last_turn.to_json(),
            "announcements_waiting": len(self.announcements),
        }
        if self.mqtt is not None:
            shown["mqtt"] = {"connected": self.mqtt.connected, "problem": self.mqtt.problem}
        return shown

    # -- what the app tells us -----------------------------------------------------------------

    def turn_started(self) -> None:
        """A user turn began (activityStart or a typed turn): the last turn starts afresh."""
        self.last_turn = LastTurn(at_unix_s=self._wall_clock())
        self._heard_last = True
        window = self.follow_up
        if window is not None and window.open and not window.speaking:
            # A typed turn (an announcement) takes over from the window, as a press does; the
            # turn's own ShowState follows, so no state is shown from inside its actions here.
            window.close()
            self._cancel_follow_up_timer()
        if self._wake_end_waits:  # the word's question already ended: so does its turn
            asyncio.get_running_loop().call_soon(self._end_wake_turn)

    def journal(self, entry: Journal) -> None:
        """A journal line the app wrote: transcripts make up the last turn. Hands-free turns
        have no start of their own: words heard after an answer begin the next one."""
        if entry.kind == "input_transcript":
            if self.last_turn is None or (self.conversation.hands_free and not self._heard_last):
                self.last_turn = LastTurn()
            self._heard_last = True
            turn = self.last_turn
            turn.heard = _tail(turn.heard + entry.text)
        elif entry.kind in ("output_transcript", "model_text"):
            if self.last_turn is None:
                self.last_turn = LastTurn()
            self._heard_last = False
            turn = self.last_turn
            turn.said = _tail(turn.said + entry.text)
        else:
            return
        turn.at_unix_s = self._wall_clock()
        self._changed()


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background task (timers, mqtt) that ended by an error: said by its name."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s stopped working: %r", task.get_name(), exc, exc_info=exc)


def _tail(text: str) -> str:
    return text[-MAX_TRANSCRIPT_CHARS:]
