"""The configuration schema: frozen dataclasses, one per TOML table.

Field names are the TOML keys. Units are in the names (`_ms`, `_s`, `_hz`, `_px`, `_bytes`,
`_percent`, `_tokens`). Defaults are right for a Raspberry Pi with a USB or HAT microphone, a
speaker, a camera module and a button on GPIO 17, so an empty file (or none) is a working config.
Ranges and patterns sit in each field's metadata (see `_fields.setting`); rules that tie several
fields together are in `_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

from pilive.config._fields import setting
from pilive.config._secret import Secret
from pilive.live import models as live_models
from pilive.live import wire

ApiVersion = Literal["v1alpha", "v1beta", "v1"]
ResponseModality = Literal["audio", "text"]
MediaResolution = Literal["low", "medium", "high"]
Sensitivity = Literal["high", "low"]
ActivityHandling = Literal["start-of-activity-interrupts", "no-interruption"]
TurnCoverage = Literal["turn-includes-only-activity", "turn-includes-all-input"]
AudioBackend = Literal["pyaudio", "file", "null"]
EchoMode = Literal["auto", "cancel", "half-duplex", "off"]
EchoCanceller = Literal["webrtc", "speex"]
CameraSource = Literal["picamera2", "synthetic", "files", "none"]
CameraMode = Literal["on-activity", "continuous", "off"]
PinFactory = Literal["lgpio", "rpigpio", "pigpio", "native", "mock"]
LedKind = Literal["none", "led", "pwm", "rgb"]
LedPatternKind = Literal["off", "solid", "blink", "pulse"]
ConversationMode = Literal["push-to-talk", "hands-free"]
ButtonBackend = Literal["gpio", "keyboard"]
# The wake words whose models come inside pymicro-wakeword's wheel ("off": none listens).
WakeWord = Literal["off", "okay_nabu", "alexa", "hey_jarvis", "hey_mycroft"]
MuteKind = Literal["button", "switch"]
BuiltinTool = Literal[
    "device_status",
    "set_volume",
    "new_conversation",
    "set_timer",
    "set_alarm",
    "list_timers",
    "cancel_timer",
]
ToolBehavior = Literal["blocking", "non-blocking"]
ToolScheduling = Literal["interrupt", "when-idle", "silent"]
LogLevel = Literal["debug", "info", "warning", "error"]
TimelineAction = Literal[
    "press", "release", "new-conversation", "mute", "volume-up", "volume-down", "stop"
]
# The thinking levels some Live model takes (live.models); the API's "xhigh" none of them does.
ThinkingLevel = Literal["minimal", "low", "medium", "high"]

DEFAULT_ENDPOINT = "wss://generativelanguage.googleapis.com"
DEFAULT_MODEL = live_models.DEFAULT_MODEL  # the model table is the one place that names it
DEFAULT_SYSTEM_INSTRUCTION = (
    "You are a voice assistant on a small speaker with a camera. Answer in one or two short "
    "spoken sentences unless asked for more. When the user asks about what they are showing you, "
    "describe what the camera sees."
)
# Tool names as the Live API accepts them in functionDeclarations (the wire module's rule).
TOOL_NAME_PATTERN = wire.FUNCTION_NAME_PATTERN


@dataclass(frozen=True, slots=True)
class VadConfig:
    """`realtimeInputConfig.automaticActivityDetection` tuning, used in hands-free mode only.

    In push-to-talk mode the server's VAD is disabled and the button marks each turn.
    """

    start_sensitivity: Sensitivity = "high"
    end_sensitivity: Sensitivity = "high"
    prefix_padding_ms: int = setting(100, ge=0, le=5000)
    silence_duration_ms: int = setting(800, ge=50, le=10_000)


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The Live API session: where to connect and what the setup message asks for."""

    endpoint: str = DEFAULT_ENDPOINT
    api_version: ApiVersion = "v1beta"
    model: str = setting(
        DEFAULT_MODEL,
        pattern=r"(models/)?[A-Za-z0-9][A-Za-z0-9._-]*",
        pattern_hint="be a model name such as gemini-live-2.5-flash-preview",
    )
    # An inline key is accepted only for a loopback endpoint (the local emulator); see _rules.
    api_key: Secret | None = None
    api_key_file: Path | None = None
    # A fleet device holds no API key: it fetches ephemeral tokens from the owner's token service
    # (`pilive token-service`), presenting its credential (systemd credential
    # pilive-device-token, or device_token_file); token_ca_file verifies a private CA's server.
    token_url: str | None = None
    device_token_file: Path | None = None
    token_ca_file: Path | None = None
    voice: str = setting(
        "Puck", pattern=r"[A-Za-z][A-Za-z0-9_-]*", pattern_hint="be a voice name such as Puck"
    )
    language_code: str | None = setting(
        None,
        pattern=wire.LANGUAGE_TAG_PATTERN,
        pattern_hint="be a BCP-47 language code such as en-US",
    )
    system_instruction: str = DEFAULT_SYSTEM_INSTRUCTION
    response_modality: ResponseModality = "audio"
    media_resolution: MediaResolution = "low"
    input_transcription: bool = True
    output_transcription: bool = True
    # contextWindowCompression with a sliding window is always on: without it a session with
    # video ends after 2 minutes.
    compression_trigger_tokens: int = setting(25_600, ge=1_000, le=1_048_576)
    compression_target_tokens: int = setting(12_800, ge=500, le=1_048_576)
    session_resumption: bool = True
    activity_handling: ActivityHandling = "start-of-activity-interrupts"
    turn_coverage: TurnCoverage = "turn-includes-only-activity"
    # Thinking: a token budget on 2.5 models (-1 dynamic, 0 off) or a level on 3.x models; which
    # model takes which is in live.models, and `pilive check` says when they do not fit.
    thinking_budget: int | None = setting(None, ge=-1, le=wire.INT32_MAX)
    thinking_level: ThinkingLevel | None = None
    # Thought summaries from a thinking model: logged, never spoken.
    include_thoughts: bool = False
    # Native-audio features of the v1alpha API; unset sends nothing (the model's default).
    affective_dialog: bool | None = None
    proactive_audio: bool | None = None
    # Sampling; each unset leaves the model's default.
    temperature: float | None = setting(None, ge=0.0, le=2.0)
    top_p: float | None = setting(None, ge=0.0, le=1.0)
    top_k: int | None = setting(None, ge=1, le=wire.INT32_MAX)
    max_output_tokens: int | None = setting(None, ge=1, le=wire.INT32_MAX)
    seed: int | None = setting(None, ge=wire.INT32_MIN, le=wire.INT32_MAX)
    # BCP-47 hints of the languages the user speaks, for the input transcription.
    input_transcription_languages: tuple[str, ...] = setting(
        (),
        pattern=wire.LANGUAGE_TAG_PATTERN,
        pattern_hint="be a BCP-47 language code such as en-US",
    )
    vad: VadConfig = field(default_factory=VadConfig)


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Connecting, keepalive and reconnecting.

    A dead peer is noticed within `ping_interval_s + ping_timeout_s` plus about a second for the
    closing handshake (41 s by default) while a slow but live server, whose pongs have been seen
    to take up to 30 s, is not dropped.
    """

    connect_timeout_s: float = setting(15.0, gt=0, le=300)
    ping_interval_s: float = setting(10.0, gt=0, le=600)
    ping_timeout_s: float = setting(30.0, gt=0, le=600)
    backoff_initial_s: float = setting(1.0, gt=0, le=600)
    backoff_max_s: float = setting(30.0, gt=0, le=3600)
    backoff_factor: float = setting(2.0, ge=1.0, le=10.0)
    # A setup refused for its key, model or fields twice in a row will not fix itself: retry
    # slowly. (A single refusal, or one mid-session, is retried with the backoff.)
    config_fault_retry_s: float = setting(300.0, ge=1.0, le=86_400)
    replay_window_s: float = setting(15.0, ge=0, le=300)
    # When the network carries less than real time, a frame that cannot be written for this long
    # marks the link broken: it is resumed and the user's current turn replayed from its start.
    send_stall_s: float = setting(5.0, ge=0.5, le=120)
    # A server that owes an answer (the user's turn ended, a tool result went out, or its answer
    # began) and sends nothing for this long is taken as gone: resumed, the turn asked again.
    answer_timeout_s: float = setting(20.0, ge=2.0, le=600)


@dataclass(frozen=True, slots=True)
class AudioInputConfig:
    """The microphone: 16 kHz mono s16le chunks for `realtimeInput.audio`."""

    backend: AudioBackend = "pyaudio"
    device: str = setting(
        "default", pattern=r".*\S.*", pattern_hint='name a device (a name substring or "default")'
    )
    rate_hz: int | None = setting(None, ge=8_000, le=384_000)
    channels: int | None = setting(None, ge=1, le=32)
    file_path: Path | None = None
    pace_realtime: bool = True
    chunk_ms: int = setting(20, ge=10, le=100)
    preroll_ms: int = setting(300, ge=0, le=5_000)


@dataclass(frozen=True, slots=True)
class AudioOutputConfig:
    """The speaker: 24 kHz mono s16le answers through the ring buffer."""

    backend: AudioBackend = "pyaudio"
    device: str = setting(
        "default", pattern=r".*\S.*", pattern_hint='name a device (a name substring or "default")'
    )
    rate_hz: int | None = setting(None, ge=8_000, le=384_000)
    channels: int | None = setting(None, ge=1, le=32)
    file_path: Path | None = None
    prebuffer_ms: int = setting(60, ge=0, le=2_000)
    buffer_s: float = setting(30.0, ge=1.0, le=600.0)
    max_backlog_s: float = setting(120.0, ge=0.0, le=3600.0)
    volume_percent: int = setting(80, ge=0, le=100)
    volume_step_percent: int = setting(10, ge=1, le=50)
    earcons: bool = True
    earcon_volume_percent: int = setting(50, ge=0, le=100)


@dataclass(frozen=True, slots=True)
class AudioEchoConfig:
    """Keeping the speaker's own sound out of the microphone (audio/echo.py says how)."""

    mode: EchoMode = "auto"
    canceller: EchoCanceller = "webrtc"
    noise_suppression: bool = False
    auto_gain: bool = False
    tail_ms: int = setting(300, ge=0, le=5_000)


@dataclass(frozen=True, slots=True)
class AudioRoomConfig:
    """A simulated room around the simulated devices: the microphone hears the speaker."""

    enabled: bool = False
    latency_ms: float = setting(40.0, ge=0, le=2_000)
    rt60_ms: float = setting(300.0, ge=0, le=5_000)
    echo_gain_db: float = setting(-6.0, ge=-60, le=20)
    noise_dbfs: float = setting(-70.0, ge=-120, le=0)


@dataclass(frozen=True, slots=True)
class AudioConfig:
    input: AudioInputConfig = field(default_factory=AudioInputConfig)
    output: AudioOutputConfig = field(default_factory=AudioOutputConfig)
    echo: AudioEchoConfig = field(default_factory=AudioEchoConfig)
    room: AudioRoomConfig = field(default_factory=AudioRoomConfig)


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """Frames for `realtimeInput.video`: square JPEGs, at most one per second."""

    source: CameraSource = "picamera2"
    mode: CameraMode = "on-activity"
    fps: float = setting(1.0, gt=0, le=1.0)
    size_px: int = setting(768, ge=64, le=3072)
    jpeg_quality: int = setting(80, ge=1, le=100)
    folder: Path | None = None
    capture_timeout_s: float = setting(2.0, gt=0, le=60)


@dataclass(frozen=True, slots=True)
class LedPattern:
    """How the LED shows one appliance state (gpiozero blink/pulse vocabulary).

    `blink` uses on/off times (and fades on PWM LEDs), `pulse` uses the fade times. A plain
    on/off LED shows `pulse` as a blink with the fade times as on/off times. `color` (red, green,
    blue, each 0-1) is for RGB LEDs; `brightness` scales it, and is the level of a PWM LED.
    """

    kind: LedPatternKind = "off"
    on_time_s: float = setting(0.5, gt=0, le=60)
    off_time_s: float = setting(0.5, gt=0, le=60)
    fade_in_s: float = setting(0.0, ge=0, le=60)
    fade_out_s: float = setting(0.0, ge=0, le=60)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    brightness: float = setting(1.0, ge=0, le=1.0)


_WHITE = (1.0, 1.0, 1.0)
_BLUE = (0.0, 0.2, 1.0)
_CYAN = (0.0, 0.8, 0.8)
_GREEN = (0.0, 1.0, 0.2)
_ORANGE = (1.0, 0.4, 0.0)
_RED = (1.0, 0.0, 0.0)
_PURPLE = (0.6, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class LedPatterns:
    """One pattern per appliance state."""

    starting: LedPattern = field(
        default_factory=partial(LedPattern, kind="solid", color=_WHITE, brightness=0.3)
    )
    connecting: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="pulse", color=_WHITE, fade_in_s=0.5, fade_out_s=0.5
        )
    )
    idle: LedPattern = field(default_factory=partial(LedPattern, kind="off", color=_WHITE))
    listening: LedPattern = field(default_factory=partial(LedPattern, kind="solid", color=_BLUE))
    thinking: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="pulse", color=_CYAN, fade_in_s=0.3, fade_out_s=0.3
        )
    )
    speaking: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="pulse", color=_GREEN, fade_in_s=1.0, fade_out_s=1.0
        )
    )
    offline: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="blink", color=_ORANGE, on_time_s=0.2, off_time_s=1.8
        )
    )
    config_fault: LedPattern = field(
        default_factory=partial(LedPattern, kind="blink", color=_RED, on_time_s=0.1, off_time_s=0.1)
    )
    error: LedPattern = field(
        default_factory=partial(LedPattern, kind="blink", color=_RED, on_time_s=0.5, off_time_s=0.5)
    )
    limit_spent: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="pulse", color=_PURPLE, fade_in_s=2.0, fade_out_s=2.0, brightness=0.5
        )
    )
    muted: LedPattern = field(
        default_factory=partial(LedPattern, kind="solid", color=_RED, brightness=0.3)
    )
    ringing: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="blink", color=_ORANGE, on_time_s=0.25, off_time_s=0.25
        )
    )
    follow_up: LedPattern = field(
        default_factory=partial(
            LedPattern, kind="pulse", color=_BLUE, fade_in_s=0.6, fade_out_s=0.6, brightness=0.5
        )
    )


@dataclass(frozen=True, slots=True)
class GpioConfig:
    """Button(s) and LED(s), BCM pin numbers, through a gpiozero pin factory."""

    pin_factory: PinFactory = "lgpio"
    button_pin: int = setting(17, ge=0, le=53)
    pull_up: bool = True
    bounce_ms: int = setting(20, ge=0, le=1_000)
    new_conversation_pin: int | None = setting(None, ge=0, le=53)
    # The privacy mute: a button that toggles it, or a switch that mutes while closed (wired like
    # the talk button); an optional LED that is lit exactly while the microphone is muted.
    mute_pin: int | None = setting(None, ge=0, le=53)
    mute_kind: MuteKind = "button"
    privacy_led_pin: int | None = setting(None, ge=0, le=53)
    # Volume buttons: each press steps audio.output's volume by volume_step_percent.
    volume_up_pin: int | None = setting(None, ge=0, le=53)
    volume_down_pin: int | None = setting(None, ge=0, le=53)
    led: LedKind = "none"
    led_pins: tuple[int, ...] = setting((), ge=0, le=53)
    led_active_high: bool = True
    patterns: LedPatterns = field(default_factory=LedPatterns)


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    """How turns start and end."""

    mode: ConversationMode = "push-to-talk"
    button_backend: ButtonBackend = "gpio"
    # Taps shorter than this are ignored (no empty turns); holds longer than the maximum end the
    # turn by themselves.
    min_press_ms: int = setting(150, ge=0, le=5_000)
    max_press_s: float = setting(60.0, ge=1.0, le=3_600)
    # After an answer, listen this long for a reply without a press (0: off; push-to-talk only).
    # The reply starts when speech is heard and ends at the first silence ([live.vad] tunes both).
    follow_up_s: float = setting(0.0, ge=0, le=30)
    # A spoken word that starts a turn as a press does (wake_word.py); "off" by default.
    wake_word: WakeWord = "off"


@dataclass(frozen=True, slots=True)
class CommandTool:
    """A program the model may run: `{param}` placeholders in `argv` take the call's arguments.

    Arguments are substituted into whole argv elements and run without a shell.
    """

    name: str = setting(
        pattern=TOOL_NAME_PATTERN,
        pattern_hint="be 1-64 letters, digits, _ . : or -, not a digit first",
    )
    description: str = setting(pattern=r"(?s).*\S.*", pattern_hint="not be empty")
    argv: tuple[str, ...] = setting()
    parameters: Mapping[str, object] | None = None
    timeout_s: float = setting(10.0, gt=0, le=3_600)
    max_output_bytes: int = setting(16_384, ge=1, le=1_048_576)
    # "blocking": the model waits for the result. "non-blocking": it keeps talking while the
    # program runs, and `scheduling` says what it does with the result (FunctionResponse
    # scheduling): "interrupt" (stop and speak about it), "when-idle" (speak once finished, the
    # API's default) or "silent" (take it in without a word).
    behavior: ToolBehavior = "blocking"
    scheduling: ToolScheduling = "when-idle"


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    """Functions declared to the model in setup."""

    builtin: tuple[BuiltinTool, ...] = (
        "device_status",
        "set_volume",
        "new_conversation",
        "set_timer",
        "set_alarm",
        "list_timers",
        "cancel_timer",
    )
    google_search: bool = True
    command: tuple[CommandTool, ...] = ()


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Where the resumption handle survives restarts (systemd's StateDirectory)."""

    directory: Path = Path("/var/lib/pilive")
    # Gemini API resumption handles are documented to live 2 hours after a session ends.
    handle_max_age_s: float = setting(7_200.0, ge=0, le=7 * 86_400)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Spending limits, so a speaker left on does not run up a bill unseen."""

    # Tokens the Live API may bill per local day (totalTokenCount of each turn, summed). Once
    # spent, a press gets the error earcon and the limit_spent LED instead of a turn, until
    # local midnight; the count survives restarts (in the state directory). Unset: no limit.
    daily_tokens: int | None = setting(None, ge=1, le=10**12)


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """Timers and alarms the model sets (the set_timer, set_alarm ... tools): they ring on the
    speaker, offline too, and survive restarts."""

    # An alarm nobody stops rings this long, then stops by itself.
    ring_limit_s: float = setting(120.0, ge=5.0, le=3_600)


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Home Assistant through MQTT discovery: the device appears by itself with its assist state,
    the mute switch, the volume, the last transcripts and an announce text. Outbound only."""

    enabled: bool = False
    host: str = setting(
        "", pattern=r"[A-Za-z0-9.:\[\]_-]*", pattern_hint="be a host name or address"
    )
    port: int = setting(1883, ge=1, le=65_535)
    tls: bool = False
    # The CA that signed the broker's certificate (unset: the system's CAs).
    ca_file: Path | None = None
    username: str | None = None
    # The password, alone in a file readable only by root or pilive (mode 600).
    password_file: Path | None = None
    discovery_prefix: str = setting(
        "homeassistant", pattern=r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", pattern_hint="be a topic"
    )
    base_topic: str = setting(
        "pilive", pattern=r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", pattern_hint="be a topic"
    )
    device_id: str = setting(
        "pilive", pattern=r"[A-Za-z0-9_-]+", pattern_hint="be letters, digits, _ or -"
    )
    device_name: str = setting("pilive", pattern=r".*\S.*", pattern_hint="not be empty")
    keepalive_s: int = setting(60, ge=5, le=3_600)


@dataclass(frozen=True, slots=True)
class ControlConfig:
    """The local control socket (`pilive ctl`, scripts, cron jobs): a Unix socket, mode 0660,
    never a network port. Unset `socket`: systemd's $RUNTIME_DIRECTORY/control.sock when the
    service runs, else /run/pilive/control.sock."""

    enabled: bool = True
    socket: Path = Path("/run/pilive/control.sock")


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: LogLevel = "info"
    # Input and output transcripts in the journal; turn off for privacy.
    transcripts: bool = True
    # A "health" line (tasks, threads, fds, RSS, underruns, reconnects) this often: months-long
    # runs show in the journal whether anything grows.
    health_interval_s: float = setting(600.0, ge=1.0, le=86_400)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus metrics (turns, first-answer latency, reconnects, underruns, tokens, camera
    frames): off unless a textfile for node-exporter or a listen address is given."""

    textfile: Path | None = None
    textfile_interval_s: float = setting(15.0, ge=1.0, le=3_600)
    listen: str | None = setting(
        None,
        pattern=r"(\[[0-9A-Fa-f:.]+\]|[0-9.]+|localhost):[0-9]{1,5}",
        pattern_hint="be address:port, such as 127.0.0.1:9464 or [::]:9464",
    )


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One scripted action, `at_s` seconds after start, for headless reproducible runs."""

    at_s: float = field(metadata={"ge": 0, "le": 86_400})
    action: TimelineAction = field()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Build it with `load_config` or `parse_config`."""

    live: LiveConfig = field(default_factory=LiveConfig)
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    state: StateConfig = field(default_factory=StateConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    timers: TimersConfig = field(default_factory=TimersConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    timeline: tuple[TimelineStep, ...] = ()
