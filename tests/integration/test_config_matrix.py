"""Every documented value of every enum-like key runs: `pilive run` on simulated hardware against
the emulator takes one scripted turn and stops with exit 0 on SIGTERM.

The keys and their values come from the config model's Literal types; `config/pilive.toml` must
document exactly those values in the comment above each key, so a value added to either side is
picked up here (and a value documented but not accepted, or accepted but not documented, fails).
The full product is far too large to run, so the runs cover every pair of values (pairwise): a
fault that needs two settings together still shows.

Values that cannot run on this machine are listed in `unavailable()` with the reason, and skipped
(never silently): gpiozero pin factories other than "mock" need a Pi's GPIO, "picamera2" needs the
camera library and a camera, and "pyaudio" needs a sound server (the PulseAudio rig, when present).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import pty
import random
import re
import shutil
import signal
import sys
import time
import types
import typing
import wave
from collections.abc import Iterator, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simplejpeg

from pilive.config import Config
from pilive.emulator import Emulator
from pilive.emulator.options import ToolTrigger
from pilive.live.models import DEFAULT_MODEL, KNOWN_MODELS, takes_non_blocking
from pilive.preflight import GPIO_LIBRARIES
from pilive.state import USAGE_FILE_NAME
from tests.support.daemon_rig import NotifySocket
from tests.support.emulator_rig import emulator_options
from tests.support.pulse_rig import pulse_rig  # noqa: F401  (the fixture, for the pyaudio rows)

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED_TOML = REPO / "config" / "pilive.toml"
# Keys whose values are a list of choices, or a timeline step: covered elsewhere, not a setting
# that changes how the daemon runs its parts.
NOT_IN_MATRIX = {"tools.builtin", "timeline.action"}
MATRIX_TOOL = "matrix_tool"
MATRIX_TOOL_TRIGGER = ToolTrigger(turns=frozenset({1}), function=MATRIX_TOOL)
_CHATTER = re.compile(r"INFO pilive: (input_transcript|output_transcript|usage):")
RUN_TIMEOUT_S = 30.0  # one daemon: start, connect, one turn, stop; generous for a loaded machine
PARALLEL_RUNS = 4

Combo = Mapping[str, str]


# --- the keys and their values --------------------------------------------------------------


def literal_keys(cls: type = Config, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Dotted TOML key -> the values its Literal type accepts (LED pattern states folded as *)."""
    keys: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        name = f"{prefix}{f.name}"
        if cls.__name__ == "LedPatterns":
            name = f"{prefix}*"
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Literal:
            keys[name] = tuple(str(a) for a in args)
        elif origin is tuple and args and typing.get_origin(args[0]) is typing.Literal:
            keys[name] = tuple(str(a) for a in typing.get_args(args[0]))
        elif origin is tuple and args and dataclasses.is_dataclass(args[0]):
            keys.update(literal_keys(args[0], f"{name}."))  # type: ignore[arg-type]
        elif dataclasses.is_dataclass(hint):
            keys.update(literal_keys(hint, f"{name}."))  # type: ignore[arg-type]
        elif isinstance(hint, types.UnionType):
            continue
    if cls is Config:
        step = typing.get_type_hints(Config)["timeline"]
        keys.update(literal_keys(typing.get_args(step)[0], "timeline."))
    return keys


_CHOICE = r'"[^"]+"(?:\s*\([^)]*\))?'
_CHOICE_LIST = re.compile(rf"{_CHOICE}(?:\s*(?:,\s*or|,|or)\s*{_CHOICE})+")


def documented_values(text: str) -> dict[str, tuple[str, ...]]:
    """Dotted key -> the quoted choices listed in the comment above it.

    A choice list is two or more quoted words joined by "," or "or"; words inside a parenthesis
    after a choice (`"pulse" (...; a plain "led" blinks instead)`) are not choices. A comment
    above a table covers its keys; a key right below a documented key, with no comment of its
    own, shares that key's comment (`start_sensitivity` / `end_sensitivity`).
    """
    documented: dict[str, tuple[str, ...]] = {}
    section = ""
    comment: list[str] = []
    inherited: tuple[str, ...] = ()
    for raw in text.splitlines():
        line = raw.strip()
        header = re.fullmatch(r"#?\s*\[\[?([\w.]+)\]\]?", line)
        key = re.fullmatch(r"#?\s*(\w+)\s*=.*", line)
        if not line:
            comment, inherited = [], ()
        elif header:
            section = re.sub(r"^gpio\.patterns\.\w+$", "gpio.patterns.*", header.group(1))
            inherited, comment = _choices(" ".join(comment)) or inherited, []
        elif key:
            own = _choices(" ".join(comment))
            inherited = own or inherited
            if inherited:
                name = f"{section}.{key.group(1)}" if section else key.group(1)
                documented.setdefault(name, inherited)
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# "))
    return documented


def _choices(comment: str) -> tuple[str, ...]:
    lists = " ".join(m.group(0) for m in _CHOICE_LIST.finditer(comment))
    return tuple(re.findall(r'"([^"]+)"', re.sub(r"\([^)]*\)", "", lists)))


def unavailable() -> dict[tuple[str, str], str]:
    """(key, value) that cannot run here -> why."""
    skipped: dict[tuple[str, str], str] = {}
    for factory, (module, package) in GPIO_LIBRARIES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            reason = f"the Python module {module} is absent (Debian package {package})"
        else:
            reason = "needs a Raspberry Pi's GPIO chip"
        skipped[("gpio.pin_factory", factory)] = reason
    for factory in ("native",):
        skipped.setdefault(("gpio.pin_factory", factory), "needs a Raspberry Pi's GPIO registers")
    try:
        importlib.import_module("picamera2")
    except ImportError:
        skipped[("camera.source", "picamera2")] = "the picamera2 module is absent"
    else:
        skipped[("camera.source", "picamera2")] = "needs a camera module"
    if shutil.which("pulseaudio") is None:
        for direction in ("input", "output"):
            skipped[(f"audio.{direction}.backend", "pyaudio")] = "no PulseAudio rig (pulseaudio)"
    return skipped


def allowed(key_a: str, value_a: str, key_b: str, value_b: str) -> bool:
    """Pairs a run cannot hold: hands-free needs a microphone that hears speech then silence;
    a blocking tool's result has no scheduling (the config refuses any but the default);
    hands-free with a wake word needs the word said in the microphone (that runs in the
    simulated room: test_wake_word_room.py)."""
    pair = {key_a: value_a, key_b: value_b}
    return (
        not (
            pair.get("conversation.mode") == "hands-free"
            and pair.get("conversation.wake_word", "off") != "off"
        )
        and not (
            pair.get("conversation.mode") == "hands-free"
            and pair.get("audio.input.backend", "file") != "file"
        )
        and not (
            pair.get("tools.command.behavior") == "blocking"
            and pair.get("tools.command.scheduling", "when-idle") != "when-idle"
        )
    )


def pairwise(dimensions: Mapping[str, Sequence[str]], *, seed: int = 13) -> list[dict[str, str]]:
    """Rows covering every allowed pair of values of two keys (greedy, AETG-style, seeded)."""
    keys = list(dimensions)
    uncovered = {
        (a, va, b, vb)
        for a, b in combinations(keys, 2)
        for va in dimensions[a]
        for vb in dimensions[b]
        if allowed(a, va, b, vb)
    }
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    while uncovered:
        best: dict[str, str] = {}
        best_gain = -1
        for _ in range(30):
            first = rng.choice(sorted(uncovered))
            row = {first[0]: first[1], first[2]: first[3]}
            for key in rng.sample(keys, len(keys)):
                if key in row:
                    continue
                options = [
                    v for v in dimensions[key] if all(allowed(key, v, k, row[k]) for k in row)
                ]
                row[key] = max(
                    options,
                    key=lambda v: (
                        sum(_pair(key, v, k, row[k]) in uncovered for k in row),
                        rng.random(),
                    ),
                )
            gain = sum(_pair(a, row[a], b, row[b]) in uncovered for a, b in combinations(keys, 2))
            if gain > best_gain:
                best, best_gain = row, gain
        uncovered -= {_pair(a, best[a], b, best[b]) for a, b in combinations(keys, 2)}
        rows.append(best)
    return rows


def _pair(a: str, va: str, b: str, vb: str) -> tuple[str, str, str, str]:
    return (a, va, b, vb) if keys_order(a) < keys_order(b) else (b, vb, a, va)


_ORDER: dict[str, int] = {}


def keys_order(key: str) -> int:
    return _ORDER[key]


def matrix() -> tuple[dict[str, tuple[str, ...]], list[dict[str, str]]]:
    skipped = unavailable()
    dimensions = {
        key: tuple(v for v in values if (key, v) not in skipped)
        for key, values in literal_keys().items()
        if key not in NOT_IN_MATRIX
    }
    _ORDER.update({key: i for i, key in enumerate(dimensions)})
    return dimensions, pairwise(dimensions)


# --- the documented values and the accepted ones agree -------------------------------------


def test_every_documented_choice_is_accepted_and_every_accepted_one_documented() -> None:
    accepted = literal_keys()
    documented = documented_values(DOCUMENTED_TOML.read_text())
    assert {k: set(documented.get(k, ())) for k in accepted} == {
        k: set(v) for k, v in accepted.items()
    }


def test_pairwise_rows_cover_every_allowed_pair() -> None:
    dimensions, rows = matrix()
    for a, b in combinations(dimensions, 2):
        for va in dimensions[a]:
            for vb in dimensions[b]:
                if allowed(a, va, b, vb):
                    assert any(r[a] == va and r[b] == vb for r in rows), (a, va, b, vb)


# --- one daemon per row ---------------------------------------------------------------------


def _mic_wav(path: Path, rate_hz: int = 16000) -> Path:
    """1 s of noise (speech to the emulator's voice detector), then 6 s of silence, looped. In
    hands-free mode the next burst is a new turn that interrupts an answer still playing: the
    silence outlasts the first answer (a tool's run in it, a sound server slow to start under
    load), so the daemon is seen idle after it."""
    rng = np.random.default_rng(13)
    speech = rng.normal(0, 3000, rate_hz).clip(-32768, 32767)
    samples = np.concatenate([speech, np.zeros(6 * rate_hz)]).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(samples.tobytes())
    return path


def _image_folder(path: Path) -> Path:
    path.mkdir()
    pixels = np.zeros((48, 64, 3), dtype=np.uint8)
    pixels[:, :32] = (200, 40, 40)
    (path / "frame.jpg").write_bytes(simplejpeg.encode_jpeg(pixels, quality=80))
    return path


def model_for(modality: str) -> str:
    """The default model, or the first one in service that answers in `modality`."""
    serving = [
        m for m in KNOWN_MODELS if not m.retired and modality.upper() in m.response_modalities
    ]
    names = [m.name for m in serving]
    return DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]


def config_text(
    row: Combo,
    *,
    endpoint: str,
    api_key: str,
    work: Path,
    model: str | None = None,
    live_extra: Sequence[str] = (),
    tables: Sequence[str] = (),
) -> str:
    """A `pilive run` config for one row: the row's values, simulated hardware around them;
    `model` and `live_extra` (more `[live]` lines) for the rows of non-enum keys, `tables` for
    whole tables of them (`[limits]`)."""
    led = row["gpio.led"]
    pins = {"none": "[]", "led": "[5]", "pwm": "[5]", "rgb": "[5, 6, 13]"}[led]
    hands_free = row["conversation.mode"] == "hands-free"
    lines = [
        "[live]",
        f'endpoint = "{endpoint}"',
        f'api_key = "{api_key}"',
        f'api_version = "{row["live.api_version"]}"',
        f'model = "{model or model_for(row["live.response_modality"])}"',
        f'response_modality = "{row["live.response_modality"]}"',
        f'media_resolution = "{row["live.media_resolution"]}"',
        f'activity_handling = "{row["live.activity_handling"]}"',
        f'turn_coverage = "{row["live.turn_coverage"]}"',
        *live_extra,
        "[live.vad]",
        f'start_sensitivity = "{row["live.vad.start_sensitivity"]}"',
        f'end_sensitivity = "{row["live.vad.end_sensitivity"]}"',
        "prefix_padding_ms = 40",
        "silence_duration_ms = 300",
        "[connection]",
        "backoff_initial_s = 0.2",
        "backoff_max_s = 2.0",
        "[audio.input]",
        f'backend = "{row["audio.input.backend"]}"',
        f'file_path = "{work / "mic.wav"}"',
        "pace_realtime = true",
        "[audio.output]",
        f'backend = "{row["audio.output.backend"]}"',
        f'file_path = "{work / "answer.wav"}"',
        # The row's echo keys, unless `tables` brings a whole [audio.echo] table of its own.
        *(
            [
                "[audio.echo]",
                f'mode = "{row["audio.echo.mode"]}"',
                f'canceller = "{row["audio.echo.canceller"]}"',
            ]
            if "[audio.echo]" not in tables
            else []
        ),
        "[camera]",
        f'source = "{row["camera.source"]}"',
        f'mode = "{row["camera.mode"]}"',
        f'folder = "{work / "images"}"',
        "[gpio]",
        f'pin_factory = "{row["gpio.pin_factory"]}"',
        "button_pin = 17",
        f'led = "{led}"',
        f"led_pins = {pins}",
        f'mute_kind = "{row["gpio.mute_kind"]}"',
        # The household pins need GPIO buttons (a config rule): with the keyboard they stay unset.
        *(
            ["mute_pin = 22", "privacy_led_pin = 12", "volume_up_pin = 23", "volume_down_pin = 24"]
            if row["conversation.button_backend"] == "gpio"
            else []
        ),
    ]
    for state in (f.name for f in dataclasses.fields(Config().gpio.patterns)):
        kind = row["gpio.patterns.*.kind"]
        lines += [
            f"[gpio.patterns.{state}]",
            f'kind = "{kind}"',
            "fade_in_s = 0.3",
            "fade_out_s = 0.3",
        ]
    lines += [
        "[conversation]",
        f'mode = "{row["conversation.mode"]}"',
        f'button_backend = "{row["conversation.button_backend"]}"',
        f'wake_word = "{row["conversation.wake_word"]}"',
        "min_press_ms = 100",
        # The model calls this program in the first turn (MATRIX_TOOL_TRIGGER).
        "[[tools.command]]",
        f'name = "{MATRIX_TOOL}"',
        'description = "Says ok."',
        'argv = ["/bin/echo", "ok"]',
        f'behavior = "{row["tools.command.behavior"]}"',
        f'scheduling = "{row["tools.command.scheduling"]}"',
        "[state]",
        f'directory = "{work / "state"}"',
        "[log]",
        f'level = "{row["log.level"]}"',
        *tables,
    ]
    if not hands_free:  # hands-free turns come from the microphone; a press would barge in
        for at_s, action in ((1.0, "press"), (2.2, "release")):
            lines += ["[[timeline]]", f"at_s = {at_s}", f'action = "{action}"']
    return "\n".join(lines) + "\n"


def _answered(emu: Emulator) -> bool:
    return any(t.completed for s in emu.recording.sessions.values() for t in s.turns)


async def run_row(
    row: Combo,
    work: Path,
    *,
    model: str | None = None,
    live_extra: Sequence[str] = (),
    tables: Sequence[str] = (),
) -> str:
    """One daemon for one row; returns "" when it took its turn and stopped with exit 0, else
    what went wrong (with the end of its log)."""
    work.mkdir()  # noqa: ASYNC240 - a few small files before the daemon starts
    _mic_wav(work / "mic.wav")
    _image_folder(work / "images")
    notify = NotifySocket(work / "notify")
    controller, terminal = pty.openpty()
    log_path = work / "daemon.log"
    process: asyncio.subprocess.Process | None = None
    started_s = time.monotonic()
    try:
        async with Emulator(emulator_options(tool_trigger=MATRIX_TOOL_TRIGGER)) as emu:
            config = work / "pilive.toml"
            config.write_text(
                config_text(
                    row,
                    endpoint=emu.url,
                    api_key=emu.api_key,
                    work=work,
                    model=model,
                    live_extra=live_extra,
                    tables=tables,
                )
            )
            env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
            env.update(NOTIFY_SOCKET=str(notify.path), PYTHONUNBUFFERED="1")
            with log_path.open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    *("-m", "pilive", "run", "--config", str(config)),
                    stdin=terminal,
                    stdout=log,
                    stderr=log,
                    env=env,
                )
            try:
                await emu.wait_until(lambda: _answered(emu), RUN_TIMEOUT_S)
            except TimeoutError:
                return f"the emulator answered no turn within {RUN_TIMEOUT_S:.0f} s"
            try:
                await emu.wait_until(lambda: bool(_tool_responses(emu)), RUN_TIMEOUT_S)
            except TimeoutError:
                return "the model's call of the command tool got no response"
            sent = [r.get("scheduling") for r in _tool_responses(emu)]
            if sent != [
                _expected_scheduling(row, model or model_for(row["live.response_modality"]))
            ]:
                return f"the tool's result went back with scheduling {sent}"
            # The daemon, too, saw the answer through: its STATUS is back to idle after it.
            try:
                async with asyncio.timeout(RUN_TIMEOUT_S - (time.monotonic() - started_s)):
                    while not _saw_answer(row, notify.statuses()):
                        await asyncio.sleep(0.05)
            except TimeoutError:
                return f"STATUS never went back to idle after the answer: {notify.statuses()}"
            versions = {c.api_version for c in emu.recording.connections}
            if versions != {row["live.api_version"]}:
                return f"connected with API versions {versions}"
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                code = await process.wait()
            if code != 0:
                return f"exit {code} on SIGTERM"
            return ""
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        notify.close()
        os.close(controller)
        os.close(terminal)


def _tool_responses(emu: Emulator) -> list[dict[str, Any]]:
    return [r for s in emu.recording.sessions.values() for t in s.turns for r in t.tool_responses]


def _expected_scheduling(row: Combo, model: str) -> str | None:
    """The row's scheduling for a non-blocking tool on a model that takes one; else none."""
    if row["tools.command.behavior"] == "blocking" or not takes_non_blocking(model):
        return None
    return row["tools.command.scheduling"].upper().replace("-", "_")


def _saw_answer(row: Combo, statuses: Sequence[str]) -> bool:
    """Busy (thinking or speaking), then idle; a hands-free text answer changes no state. The
    state is the status up to its first ";" (what follows says what else is wrong or degraded,
    such as a half-duplex microphone)."""
    states = [s.split(";")[0] for s in statuses]
    if row["conversation.mode"] == "hands-free" and row["live.response_modality"] == "text":
        return bool(states) and states[-1] == "idle"
    busy = [i for i, s in enumerate(states) if s in ("thinking", "speaking")]
    return bool(busy) and "idle" in states[busy[0] :]


@pytest.fixture
def sound_server(request: pytest.FixtureRequest) -> Iterator[None]:
    """The PulseAudio rig for the "pyaudio" rows, when this machine has pulseaudio."""
    if shutil.which("pulseaudio") is not None:
        request.getfixturevalue("pulse_rig")
    yield


async def test_every_documented_value_runs_a_turn_and_stops_cleanly(
    tmp_path: Path, sound_server: None
) -> None:
    dimensions, rows = matrix()
    assert all(dimensions.values()), f"a key with no value runnable here: {dimensions}"
    gate = asyncio.Semaphore(PARALLEL_RUNS)

    async def one(index: int, row: Combo) -> str:
        async with gate:
            return await run_row(row, tmp_path / f"run{index:02d}")

    results = await asyncio.gather(*(one(i, row) for i, row in enumerate(rows)))
    failures = []
    for index, (row, problem) in enumerate(zip(rows, results, strict=True)):
        if problem:
            log = (tmp_path / f"run{index:02d}" / "daemon.log").read_text(errors="replace")
            # What went wrong, not the turn-by-turn chatter that fills a long run's tail.
            lines = [line for line in log.splitlines() if not _CHATTER.search(line)]
            log_tail = "\n".join(lines)[-3000:]
            failures.append(f"run {index} {dict(row)}: {problem}\n{log_tail}")
    assert not failures, "\n\n".join(failures)


# --- the [live] keys that are no enum: thinking, native audio, sampling, languages ------------

NATIVE_AUDIO = "gemini-2.5-flash-native-audio-preview-12-2025"
# (name, model, api_version, [live] lines): every value config/pilive.toml shows for these keys,
# each with a model that takes it, so that the emulator (holding each model to its rules)
# accepts the setup and answers a turn.
FEATURE_ROWS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "every-key-2.5-v1alpha",
        NATIVE_AUDIO,
        "v1alpha",
        (
            "thinking_budget = -1",
            "include_thoughts = true",
            "affective_dialog = true",
            "proactive_audio = true",
            "temperature = 1.0",
            "top_p = 0.95",
            "top_k = 40",
            "max_output_tokens = 1024",
            "seed = 7",
            'input_transcription_languages = ["en-US", "de-DE"]',
        ),
    ),
    (
        "thinking-off-features-off",
        NATIVE_AUDIO,
        "v1beta",
        (
            "thinking_budget = 0",
            "include_thoughts = false",
            "affective_dialog = false",
            "proactive_audio = false",
        ),
    ),
    ("level-minimal", "gemini-3.1-flash-live-preview", "v1beta", ('thinking_level = "minimal"',)),
    *(
        (
            f"level-{level}",
            "gemini-3.8-live-extended-thinking",
            "v1beta",
            (f'thinking_level = "{level}"', "include_thoughts = true"),
        )
        for level in ("low", "medium", "high")
    ),
    (
        "3.8-live-sampling",
        "gemini-3.8-live",
        "v1beta",
        ("proactive_audio = true", "temperature = 1.0", "top_p = 0.95", "seed = 7"),
    ),
)


def feature_base_row(api_version: str) -> dict[str, str]:
    """A pairwise row (so its values go together), on simulated hardware that runs anywhere."""
    row = dict(matrix()[1][0])
    row.update(
        {
            "live.api_version": api_version,
            "live.response_modality": "audio",
            "audio.input.backend": "file",
            "audio.output.backend": "file",
            "camera.source": "synthetic",
            "gpio.pin_factory": "mock",
            "conversation.mode": "push-to-talk",
            # The tests on this row turn hands-free on, and check what the daemon logs at info.
            "conversation.wake_word": "off",
            "log.level": "info",
        }
    )
    return row


def test_feature_rows_show_every_documented_example() -> None:
    """Each example config/pilive.toml gives for these keys (commented or set) is in a row."""
    text = DOCUMENTED_TOML.read_text()
    run = {line for _, _, _, lines in FEATURE_ROWS for line in lines}
    keys = {line.split(" =")[0] for line in run}
    shown = re.findall(r"^#? ?((\w+) = .+)$", text, flags=re.MULTILINE)
    examples = {line for line, key in shown if key in keys and not line.endswith("= []")}
    assert examples and examples <= run, examples - run
    assert {"thinking_level", "include_thoughts", "input_transcription_languages"} <= keys


@pytest.mark.parametrize(
    ("model", "api_version", "live_extra"),
    [row[1:] for row in FEATURE_ROWS],
    ids=[row[0] for row in FEATURE_ROWS],
)
async def test_every_thinking_feature_and_sampling_value_runs_a_turn(
    tmp_path: Path, model: str, api_version: str, live_extra: tuple[str, ...]
) -> None:
    """`pilive run` with these keys: the emulator takes the setup, a turn is answered, and the
    daemon stops cleanly."""
    row = feature_base_row(api_version)
    problem = await run_row(row, tmp_path / "run", model=model, live_extra=live_extra)
    assert not problem, problem + "\n" + (tmp_path / "run" / "daemon.log").read_text()[-2000:]


async def test_a_daily_token_limit_runs_a_turn_and_keeps_the_days_count(tmp_path: Path) -> None:
    """`[limits] daily_tokens` as config/pilive.toml shows it: `pilive run` answers a turn under
    the limit and stops cleanly, with the day's count kept in the state directory."""
    example = re.search(r"^# (daily_tokens = \d+)$", DOCUMENTED_TOML.read_text(), re.MULTILINE)
    assert example is not None
    row = feature_base_row("v1beta")
    problem = await run_row(row, tmp_path / "run", tables=("[limits]", example.group(1)))
    assert not problem, problem + "\n" + (tmp_path / "run" / "daemon.log").read_text()[-2000:]
    kept = json.loads((tmp_path / "run" / "state" / USAGE_FILE_NAME).read_text())
    assert kept["spent_tokens"] > 0


@pytest.mark.parametrize(
    ("echo", "status_says"),
    [
        (('mode = "cancel"', 'canceller = "webrtc"', "noise_suppression = true"), ""),
        (
            ('mode = "half-duplex"', 'canceller = "speex"', "auto_gain = true"),
            "echo half-duplex (configured; speexdsp AGC)",
        ),
    ],
    ids=["cancel-webrtc-ns", "half-duplex-speex-agc"],
)
async def test_hands_free_in_the_simulated_room_runs_a_turn(
    tmp_path: Path, echo: tuple[str, ...], status_says: str
) -> None:
    """`[audio.room] enabled = true` (the simulated room, where the microphone hears the
    speaker) with hands-free and the echo keys: `pilive run` answers a turn and stops cleanly,
    and logs which echo mode runs."""
    row = feature_base_row("v1beta")
    row["conversation.mode"] = "hands-free"
    tables = ("[audio.room]", "enabled = true", "[audio.echo]", *echo)
    log = tmp_path / "run" / "daemon.log"
    problem = await run_row(row, tmp_path / "run", tables=tables)
    assert not problem, problem + "\n" + log.read_text()[-2000:]
    assert f"microphone: {status_says}" in log.read_text()
