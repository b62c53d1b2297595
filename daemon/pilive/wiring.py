"""The composition root's first half: configuration -> each part, tested on its own.

The config speaks the user's words (`media_resolution = "low"`, `led = "rgb"`); each part takes
its own small options type in its own words (`MEDIA_RESOLUTION_LOW`, `"rgbled"`). Keeping the
translation here means neither side knows the other's vocabulary. The option mappers are pure;
the device builders at the end construct the microphone, speaker, camera and button backend
(nothing is opened until the app starts them). `App` only connects the parts' callbacks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pilive import wake_word
from pilive.audio.backends import AudioBackend, open_backend
from pilive.audio.capture import Capture
from pilive.audio.echo_mode import EchoPlan, EchoSettings, plan_echo
from pilive.audio.playback import Playback
from pilive.config import Config, Secret
from pilive.config.model import LedPattern as ConfigLedPattern
from pilive.controls.events import ApplianceState, ControlEventCallback
from pilive.controls.gpio import ControlsConfig
from pilive.controls.patterns import LedConfig, LedPattern
from pilive.conversation import Timing
from pilive.live import retry, wire
from pilive.live.models import declared_behavior, takes_non_blocking
from pilive.net.connection import LinkOptions
from pilive.net.tokens import TokenSource
from pilive.parts import Controls
from pilive.timer_keeper import TimerKeeper
from pilive.tools.base import BLOCKING, Behavior, Tool, ToolDeclaration
from pilive.tools.builtin import DeviceStatusTool, NewConversationTool, SetVolumeTool
from pilive.tools.command import CommandTool
from pilive.tools.timer_tools import timer_tools

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    # numpy underneath: each is imported by the builder below that needs it, and only then.
    from pilive.audio.echo import EchoProcessor
    from pilive.audio.room import RoomOptions
    from pilive.audio.wake import WakeModel, WakeWordListener
    from pilive.camera import CameraState, CameraStreamer

_LED_KINDS = {"none": "none", "led": "led", "pwm": "pwmled", "rgb": "rgbled"}


def _enum(prefix: str, value: str) -> str:
    """ "start-of-activity-interrupts" -> "START_OF_ACTIVITY_INTERRUPTS" (with a prefix)."""
    return prefix + value.upper().replace("-", "_")


def setup_options(
    config: Config, declarations: Sequence[ToolDeclaration] = ()
) -> wire.SetupOptions:
    """The `setup` message: push-to-talk disables the server's VAD, hands-free tunes it."""
    live = config.live
    hands_free = config.conversation.mode == "hands-free"
    vad = (
        wire.VadOptions(
            disabled=False,
            start_of_speech_sensitivity=_enum("START_SENSITIVITY_", live.vad.start_sensitivity),
            end_of_speech_sensitivity=_enum("END_SENSITIVITY_", live.vad.end_sensitivity),
            prefix_padding_ms=live.vad.prefix_padding_ms,
            silence_duration_ms=live.vad.silence_duration_ms,
        )
        if hands_free
        else wire.VadOptions(disabled=True)
    )
    # Each declaration carries the behaviour the tool runner settled on (blocking everywhere on a
    # synchronous-only model); the model table says when the field must be spelled out.
    functions = tuple(
        wire.FunctionDeclaration(
            d.name,
            d.description,
            d.parameters_openapi(),
            declared_behavior(live.model, d.behavior.wire_name),
        )
        for d in declarations
    )
    return wire.SetupOptions(
        model=live.model,
        response_modalities=(live.response_modality.upper(),),
        voice_name=live.voice,
        language_code=live.language_code,
        media_resolution=_enum("MEDIA_RESOLUTION_", live.media_resolution),
        system_instruction=live.system_instruction,
        function_declarations=functions,
        google_search=config.tools.google_search,
        vad=vad,
        activity_handling=_enum("", live.activity_handling),
        turn_coverage=_enum("", live.turn_coverage),
        session_resumption=live.session_resumption,
        context_window_compression=True,
        compression_trigger_tokens=live.compression_trigger_tokens,
        compression_target_tokens=live.compression_target_tokens,
        input_audio_transcription=live.input_transcription,
        output_audio_transcription=live.output_transcription,
        generation=wire.GenerationOptions(
            temperature=live.temperature,
            top_p=live.top_p,
            top_k=live.top_k,
            max_output_tokens=live.max_output_tokens,
            seed=live.seed,
            thinking_budget=live.thinking_budget,
            thinking_level=None if live.thinking_level is None else _enum("", live.thinking_level),
            include_thoughts=live.include_thoughts,
            affective_dialog=live.affective_dialog,
        ),
        proactive_audio=live.proactive_audio,
        input_transcription_language_codes=live.input_transcription_languages,
    )


def link_options(config: Config) -> LinkOptions:
    c = config.connection
    return LinkOptions(
        endpoint=config.live.endpoint,
        api_version=config.live.api_version,
        connect_timeout_s=c.connect_timeout_s,
        ping_interval_s=c.ping_interval_s,
        ping_timeout_s=c.ping_timeout_s,
        backoff_initial_s=c.backoff_initial_s,
        backoff_max_s=c.backoff_max_s,
        backoff_factor=c.backoff_factor,
        config_fault_retry_s=c.config_fault_retry_s,
        send_stall_s=c.send_stall_s,
        answer_timeout_s=c.answer_timeout_s,
        handle_max_age_s=config.state.handle_max_age_s,
        constrained=config.live.token_url is not None,
    )


def link_credentials(config: Config, secret: Secret) -> tuple[Secret | None, TokenSource | None]:
    """(API key, token source) for the link: `secret` is the key, or on a fleet device
    (`live.token_url`) its credential for the token service (see config.load_credentials)."""
    live, c = config.live, config.connection
    if live.token_url is None:
        return secret, None
    context = None
    if live.token_ca_file is not None:
        context = ssl.create_default_context(cafile=str(live.token_ca_file))
    tokens = TokenSource(
        live.token_url,
        secret,
        ssl_context=context,
        timeout_s=c.connect_timeout_s,
        new_backoff=lambda: retry.backoff(c.backoff_initial_s, c.backoff_max_s, c.backoff_factor),
    )
    return None, tokens


def timing(config: Config) -> Timing:
    return Timing(
        min_press_s=config.conversation.min_press_ms / 1000,
        max_press_s=config.conversation.max_press_s,
    )


def press_preroll_ms(config: Config) -> int:
    """A press's turn gets the pre-roll plus the minimum press: the turn starts only once the
    press lasted `min_press_ms`, and nothing said since the press may be lost."""
    return config.audio.input.preroll_ms + config.conversation.min_press_ms


def capture_preroll_ms(config: Config) -> int:
    """What the microphone keeps: a press's pre-roll, or with a wake word enough to hold the word
    (a press's turn still gets only its own, `press_preroll_ms`)."""
    press_ms = press_preroll_ms(config)
    if config.conversation.wake_word == "off":
        return press_ms
    return max(press_ms, wake_word.PREROLL_MS + config.conversation.min_press_ms)


def controls_config(config: Config) -> ControlsConfig:
    gpio = config.gpio
    patterns = {
        ApplianceState(f.name): _pattern(getattr(gpio.patterns, f.name))
        for f in dataclasses.fields(gpio.patterns)
    }
    return ControlsConfig(
        pin_factory=gpio.pin_factory,
        button_pin=gpio.button_pin,
        pull_up=gpio.pull_up,
        bounce_ms=gpio.bounce_ms or None,
        new_conversation_pin=gpio.new_conversation_pin,
        mute_pin=gpio.mute_pin,
        mute_kind=gpio.mute_kind,
        privacy_led_pin=gpio.privacy_led_pin,
        volume_up_pin=gpio.volume_up_pin,
        volume_down_pin=gpio.volume_down_pin,
        led=LedConfig(
            kind=_LED_KINDS[gpio.led],  # type: ignore[arg-type]
            pins=gpio.led_pins,
            active_high=gpio.led_active_high,
            patterns=patterns,
        ),
    )


def _pattern(p: ConfigLedPattern) -> LedPattern:
    return LedPattern(
        kind=p.kind,
        on_time_s=p.on_time_s,
        off_time_s=p.off_time_s,
        fade_in_time_s=p.fade_in_s,
        fade_out_time_s=p.fade_out_s,
        colour=p.color,
        brightness=p.brightness,
    )


def tool_behavior(behavior: str, scheduling: str) -> Behavior:
    """A command tool's `behavior` and `scheduling` ("non-blocking", "when-idle") as the tool
    runner's Behavior (NON_BLOCKING, WHEN_IDLE)."""
    if behavior == "blocking":
        return BLOCKING
    return Behavior(blocking=False, scheduling=_enum("", scheduling))


def non_blocking_tools(config: Config) -> bool:
    """Whether the model may run tools non-blocking; a synchronous-only model gets them all as
    blocking (and `pilive check` says so)."""
    return takes_non_blocking(config.live.model)


def tools(
    config: Config,
    *,
    get_volume_percent: Callable[[], int],
    set_volume_percent: Callable[[int], None],
    start_new_conversation: Callable[[], None],
    timers: TimerKeeper | None = None,
) -> list[Tool]:
    """The tools declared to the model: enabled built-ins, then the configured commands.
    Without `timers` (a test of other tools) the timer tools are left out."""
    builtin: dict[str, Tool] = {
        **(timer_tools(timers) if timers is not None else {}),
        "device_status": DeviceStatusTool(get_volume_percent=get_volume_percent),
        "set_volume": SetVolumeTool(set_volume_percent=set_volume_percent),
        "new_conversation": NewConversationTool(start_new_conversation=start_new_conversation),
    }
    chosen: list[Tool] = [builtin[name] for name in config.tools.builtin if name in builtin]
    for command in config.tools.command:
        chosen.append(
            CommandTool(
                name=command.name,
                description=command.description,
                argv=command.argv,
                parameters=command.parameters or {"type": "object", "properties": {}},
                timeout_s=command.timeout_s,
                max_output_bytes=command.max_output_bytes,
                behavior=tool_behavior(command.behavior, command.scheduling),
            )
        )
    return chosen


# -- the devices ---------------------------------------------------------------------------------


def capture(
    config: Config, on_chunk: Callable[[bytes], None], *, backend: AudioBackend | None = None
) -> Capture:
    """The microphone; a simulated one loops its WAV (a real microphone never runs out).
    `backend`: the simulated room, shared with the speaker."""
    mic = config.audio.input
    return Capture(
        backend
        or open_backend(
            mic.backend,
            **_file_options(
                mic.backend, input_path=mic.file_path, realtime=mic.pace_realtime, loop=True
            ),
        ),
        on_chunk,
        device=mic.device,
        chunk_ms=mic.chunk_ms,
        preroll_ms=capture_preroll_ms(config),
        rate_hz=mic.rate_hz,
        channels=mic.channels,
    )


def playback(
    config: Config,
    on_drained: Callable[[], None],
    *,
    backend: AudioBackend | None = None,
    reference_ms: int = 0,
) -> Playback:
    """The speaker. `reference_ms`: how much of what it played the echo path can read back."""
    spk = config.audio.output
    return Playback(
        backend
        or open_backend(
            spk.backend,
            **_file_options(spk.backend, output_path=spk.file_path, output_rate_hz=spk.rate_hz),
        ),
        device=spk.device,
        prebuffer_ms=spk.prebuffer_ms,
        ring_ms=int(spk.buffer_s * 1000),
        volume_percent=spk.volume_percent,
        earcon_volume_percent=spk.earcon_volume_percent,
        rate_hz=spk.rate_hz,
        channels=spk.channels,
        on_drained=on_drained,
        max_backlog_s=spk.max_backlog_s,
        reference_ms=reference_ms,
    )


# -- the microphone's echo path and the simulated room --------------------------------------------

# What the speaker played, kept for the echo path: the reference is read a few 10 ms frames
# behind the device, so this is ample even for a thread that was not scheduled for a while.
REFERENCE_MS = 2000


def echo_settings(config: Config) -> EchoSettings:
    echo = config.audio.echo
    return EchoSettings(
        mode=echo.mode,
        canceller=echo.canceller,
        noise_suppression=echo.noise_suppression,
        auto_gain=echo.auto_gain,
        tail_ms=echo.tail_ms,
    )


def echo_plan(config: Config) -> EchoPlan:
    """What the microphone path will do, and why (loads the canceller's library)."""
    conv = config.conversation
    return plan_echo(
        echo_settings(config),
        hands_free=conv.mode == "hands-free",
        wake_word=conv.wake_word != "off" and wake_word.missing_package() is None,
    )


def echo(
    config: Config,
    plan: EchoPlan,
    speaker: Playback,
    *,
    on_chunk: Callable[[bytes], None],
    mic_time: Callable[[], float],
) -> EchoProcessor | None:
    """The echo thread between the microphone and `on_chunk`, or None when the plan is off."""
    if not plan.active:
        return None
    from pilive.audio.echo import EchoProcessor, PlaybackReference  # noqa: PLC0415 - numpy

    mic = config.audio.input
    chunk_ms = mic.chunk_ms
    return EchoProcessor(
        plan,
        PlaybackReference(speaker) if plan.mode != "off" else None,
        on_chunk,
        chunk_bytes=wire.INPUT_AUDIO_RATE_HZ * chunk_ms // 1000 * 2,
        preroll_chunks=-(-capture_preroll_ms(config) // chunk_ms),
        mic_time=mic_time,
    )


def wake_model(config: Config) -> WakeModel | None:
    """The configured wake word's model, loaded (blocking: tens of milliseconds to load the
    TFLite model, more on a Pi Zero; the app runs it on a worker thread). None when no word is
    configured or it cannot run here (logged: the daemon runs on without it, and `pilive check`
    says why)."""
    word = config.conversation.wake_word
    if word == "off":
        return None
    missing = wake_word.missing_package()
    if missing is not None:
        log.warning("conversation.wake_word = %r is off: %s", word, missing)
        return None
    from pilive.audio.wake import WakeModel  # noqa: PLC0415 - its library

    try:
        return WakeModel(word)
    except Exception as exc:  # a damaged package or C library: the word is off, talking goes on
        log.warning("conversation.wake_word = %r is off: its model did not load: %s", word, exc)
        return None


def wake_listener(
    config: Config, model: WakeModel | None, on_event: Callable[[wake_word.WakeEvent], None]
) -> WakeWordListener | None:
    """The wake word's listener around `model` (from `wake_model`), or None without one."""
    if model is None:
        return None
    from pilive.audio.wake import WakeWordListener  # noqa: PLC0415 - its library

    conv, vad = config.conversation, config.live.vad
    turns = wake_word.WakeTurns(
        local_end=conv.mode != "hands-free",
        sensitivity=vad.start_sensitivity,
        silence_ms=vad.silence_duration_ms,
    )
    log.info("%s", wake_word.describe(conv.wake_word))
    return WakeWordListener(model, turns, on_event)


def room_options(config: Config) -> RoomOptions | None:
    room = config.audio.room
    if not room.enabled:
        return None
    from pilive.audio.room import RoomOptions  # noqa: PLC0415 - numpy, for the simulated room

    return RoomOptions(
        latency_ms=room.latency_ms,
        rt60_ms=room.rt60_ms,
        echo_gain_db=room.echo_gain_db,
        noise_dbfs=room.noise_dbfs,
    )


def room(config: Config) -> AudioBackend | None:
    """The simulated room both the microphone and the speaker open, or None without one."""
    options = room_options(config)
    if options is None:
        return None
    from pilive.audio.backends.room import RoomBackend  # noqa: PLC0415 - simulated hardware

    mic, spk = config.audio.input, config.audio.output
    return RoomBackend(
        options,
        input_path=mic.file_path if mic.backend == "file" else None,
        output_path=spk.file_path if spk.backend == "file" else None,
        realtime=mic.pace_realtime,
        output_rate_hz=spk.rate_hz,
    )


def camera(
    config: Config,
    *,
    on_frame: Callable[[bytes], None],
    on_status: Callable[[CameraState, str], None],
) -> CameraStreamer | None:
    """The camera streamer, or None when there is no source or the mode is off."""
    cam = config.camera
    if cam.mode == "off" or cam.source == "none":  # CameraMode.OFF, the "none" source
        return None
    # The camera package needs Pillow (crop, scale, JPEG): loaded here, for a camera that runs.
    from pilive.camera import CameraMode, CameraStreamer, make_source_factory  # noqa: PLC0415

    factory = make_source_factory(
        cam.source, size_px=cam.size_px, folder=cam.folder, capture_timeout_s=cam.capture_timeout_s
    )
    if factory is None:
        return None
    return CameraStreamer(
        factory,
        on_frame=on_frame,
        fps=cam.fps,
        size_px=cam.size_px,
        jpeg_quality=cam.jpeg_quality,
        mode=CameraMode.parse(cam.mode),
        capture_timeout_s=cam.capture_timeout_s,
        on_status=on_status,
    )


def controls(
    config: Config, *, loop: asyncio.AbstractEventLoop, on_event: ControlEventCallback
) -> Controls:
    """The button backend: the keyboard on stdin, or gpiozero buttons and LED."""
    if config.conversation.button_backend == "keyboard":
        from pilive.controls.keyboard import KeyboardPushToTalk  # noqa: PLC0415

        keyboard = KeyboardPushToTalk(0, loop=loop, on_event=on_event)
        keyboard.start()
        return keyboard
    from pilive.controls.gpio import Controls as GpioControls  # noqa: PLC0415

    return GpioControls(controls_config(config), loop=loop, on_event=on_event)


def _file_options(backend: str, **options: Any) -> dict[str, Any]:
    """The file backend takes paths and pacing; the others take nothing."""
    if backend != "file":
        return {}
    return {k: v for k, v in options.items() if v is not None}
