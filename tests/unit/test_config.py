"""pilive.config: defaults, every class of error, API key lookup, Secret, the shipped configs."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pilive.config import (
    Config,
    ConfigError,
    LedPattern,
    Secret,
    load_api_key,
    load_config,
    parse_config,
    render_toml,
)
from pilive.config._reader import all_keys

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "pilive.toml"
DEMO = ROOT / "config" / "demo.toml"
KEY = "AIzaSyD-test-key-0123456789abcdefghijkl"  # 39 chars, shaped like a real key


def write(tmp_path: Path, text: str, name: str = "pilive.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(text: str, tmp_path: Path) -> tuple[Path, list[str]]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    return path, [str(p) for p in info.value.problems]


# ---- defaults -------------------------------------------------------------------------------


def test_no_file_and_empty_file_give_the_pi_defaults(tmp_path: Path) -> None:
    """A missing path (None) and an empty file both load, to the documented Pi defaults."""
    for config in (load_config(None, {}), load_config(write(tmp_path, ""), {})):
        assert config == Config()
        live, conn = config.live, config.connection
        assert live.endpoint == "wss://generativelanguage.googleapis.com"
        assert live.api_version == "v1beta"
        assert live.response_modality == "audio"
        assert live.media_resolution == "low"
        assert live.session_resumption and live.input_transcription and live.output_transcription
        assert live.compression_target_tokens < live.compression_trigger_tokens
        assert live.api_key is None and live.api_key_file is None
        assert live.vad.silence_duration_ms == 800
        # A dead peer is detected within 45 s (interval + timeout + ~1 s closing handshake),
        # while 30 s pongs are tolerated.
        assert conn.ping_interval_s + conn.ping_timeout_s + 1 <= 45
        assert conn.ping_timeout_s >= 30
        assert conn.ping_timeout_s >= 30
        assert conn.backoff_max_s == 30 and conn.replay_window_s == 15
        assert config.audio.input.backend == "pyaudio" and config.audio.input.device == "default"
        assert config.audio.input.chunk_ms == 20 and config.audio.input.preroll_ms == 300
        assert config.audio.input.rate_hz is None and config.audio.input.channels is None
        assert config.audio.output.prebuffer_ms == 60
        assert 0 <= config.audio.output.volume_percent <= 100 and config.audio.output.earcons
        assert config.camera.source == "picamera2" and config.camera.mode == "on-activity"
        assert config.camera.fps == 1.0 and config.camera.size_px == 768
        assert config.camera.jpeg_quality == 80
        assert config.gpio.pin_factory == "lgpio" and config.gpio.button_pin == 17
        assert config.gpio.pull_up and config.gpio.led == "none" and config.gpio.led_pins == ()
        assert config.gpio.patterns.listening.kind == "solid"
        assert config.gpio.patterns.config_fault.kind == "blink"
        assert config.conversation.mode == "push-to-talk"
        assert config.conversation.button_backend == "gpio"
        assert set(config.tools.builtin) == {
            "device_status",
            "set_volume",
            "new_conversation",
            "set_timer",
            "set_alarm",
            "list_timers",
            "cancel_timer",
        }
        assert config.tools.command == ()
        assert config.state.directory == Path("/var/lib/pilive")
        assert config.state.handle_max_age_s == 7200
        assert config.log.level == "info"
        assert config.timeline == ()


def test_config_is_frozen() -> None:
    """Settings cannot be changed after loading (frozen, slotted dataclasses)."""
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.live.model = "other"  # type: ignore[misc]
    assert not hasattr(config.live, "__dict__")


def test_ints_are_accepted_for_floats_and_keep_float_type() -> None:
    """TOML ints where a float is expected become floats; a set value overrides the default."""
    config = parse_config("[camera]\nfps = 1\n[connection]\nbackoff_max_s = 60\n")
    assert config.camera.fps == 1.0 and isinstance(config.camera.fps, float)
    assert config.connection.backoff_max_s == 60.0


def test_state_directory_from_systemd_unless_set() -> None:
    """$STATE_DIRECTORY (systemd StateDirectory=) is the default; an explicit key wins."""
    env = {"STATE_DIRECTORY": "/var/lib/pilive-a:/var/lib/other"}
    assert parse_config("", environ=env).state.directory == Path("/var/lib/pilive-a")
    explicit = parse_config('[state]\ndirectory = "/srv/p"\n', environ=env)
    assert explicit.state.directory == Path("/srv/p")


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    """Relative paths are taken from the config file's folder and ~ from $HOME."""
    path = write(
        tmp_path,
        '[audio.input]\nbackend = "file"\nfile_path = "sub/../in.wav"\n'
        '[audio.output]\nfile_path = "~/out.wav"\n',
    )
    config = load_config(path, {"HOME": "/home/pi"})
    assert config.audio.input.file_path == tmp_path / "in.wav"
    assert config.audio.output.file_path == Path("/home/pi/out.wav")


# ---- error messages -------------------------------------------------------------------------


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    """A typo names file, key and value, and suggests the nearest valid key."""
    path, problems = problems_of("[audio.input]\nchunk_msec = 20\n", tmp_path)
    assert problems == [
        f"{path}: audio.input.chunk_msec = 20: unknown key; did you mean audio.input.chunk_ms?"
    ]


def test_unknown_key_in_the_wrong_table_says_where_it_belongs(tmp_path: Path) -> None:
    """A valid key put in the wrong table is pointed to the right one."""
    _, problems = problems_of("[audio]\npreroll_ms = 300\n", tmp_path)
    assert problems == [
        f"{tmp_path / 'pilive.toml'}: audio.preroll_ms = 300: unknown key; "
        "it belongs in audio.input.preroll_ms"
    ]


def test_unknown_section_suggests(tmp_path: Path) -> None:
    """An unknown top-level table is an error with a suggestion too."""
    _, problems = problems_of("[camra]\nfps = 1\n", tmp_path)
    assert len(problems) == 1
    assert "camra = {fps = 1}: unknown key; did you mean camera?" in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[audio.input]\nchunk_ms = 20.5\n", "audio.input.chunk_ms = 20.5: must be a whole number"),
        ('[audio.input]\nchunk_ms = "20"\n', 'audio.input.chunk_ms = "20": must be a whole number'),
        ("[audio.input]\nchunk_ms = true\n", "audio.input.chunk_ms = true: must be a whole number"),
        ('[camera]\nfps = "1"\n', 'camera.fps = "1": must be a number'),
        ("[camera]\nfps = nan\n", "camera.fps = nan: must be a finite number"),
        ("[live]\nsession_resumption = 1\n", "live.session_resumption = 1: must be true or false"),
        ("[live]\nmodel = 7\n", "live.model = 7: must be a string"),
        ("[gpio]\nled_pins = 5\n", "gpio.led_pins = 5: must be an array"),
        ('[gpio]\nled_pins = [5, "6"]\n', 'gpio.led_pins[1] = "6": must be a whole number'),
        ("live = 3\n", "live = 3: must be a table"),
        (
            "[gpio.patterns.idle]\ncolor = [1.0, 0.0]\n",
            "gpio.patterns.idle.color = [1.0, 0.0]: must be an array of 3 values",
        ),
    ],
)
def test_wrong_types_are_named(tmp_path: Path, text: str, expected: str) -> None:
    """Each wrong type names the file, the dotted key, the value and the expected type."""
    path, problems = problems_of(text, tmp_path)
    assert problems == [f"{path}: {expected}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[audio.input]\nchunk_ms = 5\n", "audio.input.chunk_ms = 5: must be between 10 and 100"),
        ("[audio.input]\nchunk_ms = 101\n", "chunk_ms = 101: must be between 10 and 100"),
        ("[camera]\nfps = 2\n", "camera.fps = 2: must be more than 0 and at most 1"),
        ("[camera]\nfps = 0\n", "camera.fps = 0: must be more than 0 and at most 1"),
        (
            "[audio.output]\nvolume_percent = 101\n",
            "volume_percent = 101: must be between 0 and 100",
        ),
        ("[gpio]\nled_pins = [60]\n", "gpio.led_pins[0] = 60: must be between 0 and 53"),
        ('[live]\nmodel = "my model"\n', 'live.model = "my model": must be a model name'),
        ('[live]\nlanguage_code = "English"\n', "must be a BCP-47 language code"),
    ],
)
def test_out_of_range_values_are_named(tmp_path: Path, text: str, expected: str) -> None:
    """Ranges and patterns are checked and the message says the allowed range."""
    path, problems = problems_of(text, tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: ")
    assert expected in problems[0]


def test_bad_enum_lists_allowed_values_and_suggests(tmp_path: Path) -> None:
    """A bad choice lists every allowed value and suggests the closest one."""
    path, problems = problems_of('[camera]\nmode = "on_activity"\n', tmp_path)
    assert problems == [
        f'{path}: camera.mode = "on_activity": must be one of "on-activity", "continuous", '
        '"off"; did you mean "on-activity"?'
    ]
    _, problems = problems_of('[audio.input]\nbackend = "alsa"\n', tmp_path)
    assert problems[0].endswith('must be one of "pyaudio", "file", "null"')


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Several mistakes give one ConfigError that lists each of them."""
    _, problems = problems_of(
        '[camera]\nfps = 3\nmode = "sometimes"\n[gpio]\nbuton_pin = 4\n', tmp_path
    )
    assert len(problems) == 3


def test_missing_file_and_bad_toml_name_the_file(tmp_path: Path) -> None:
    """A missing, unreadable or malformed file gives a ConfigError naming the file."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=rf"{missing}: cannot read the config file: No such"):
        load_config(missing, {})
    broken = write(tmp_path, "[live\nmodel = 1\n", "broken.toml")
    with pytest.raises(ConfigError, match=rf"{broken}: invalid TOML: .*line 1"):
        load_config(broken, {})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"model = '\xff'\n")
    with pytest.raises(ConfigError, match="is not UTF-8"):
        load_config(binary, {})


@pytest.mark.parametrize(
    "text",
    [
        "[live]\nvoice = " + "[" * 400 + "]" * 400 + "\n",
        "[live]\nvoice = " + "{a = " * 150 + "1" + "}" * 150 + "\n",
        "x = " + "[" * 5000 + "]" * 5000 + "\n",
    ],
    ids=["arrays-400-deep", "tables-150-deep", "arrays-5000-deep"],
)
def test_deeply_nested_toml_is_named_not_a_recursion_error(tmp_path: Path, text: str) -> None:
    """A file nested hundreds or thousands of levels deep is one ConfigError naming the file
    (so `pilive run` exits 2 with one line). On today's main the TOML parser, or the checks
    after it, ended in RecursionError."""
    path = write(tmp_path, text, "deep.toml")
    with pytest.raises(ConfigError, match=rf"{path}: .*nested"):
        load_config(path, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[audio.input]\nbackend = "file"\n',
            'audio.input.backend = "file": needs audio.input.file_path',
        ),
        ('[camera]\nsource = "files"\n', 'camera.source = "files": needs camera.folder'),
        (
            '[gpio]\nled = "rgb"\nled_pins = [5, 6]\n',
            'gpio.led_pins = [5, 6]: led = "rgb" takes three',
        ),
        ('[gpio]\nled = "pwm"\n', 'gpio.led_pins = []: led = "pwm" takes one pin'),
        ("[gpio]\nled_pins = [5]\n", 'gpio.led_pins = [5]: led = "none" takes no pins'),
        ('[gpio]\nled = "led"\nled_pins = [17]\n', "gpio.led_pins[0] = 17: is already used by"),
        ("[gpio]\nnew_conversation_pin = 17\n", "must differ from gpio.button_pin"),
        (
            '[gpio.patterns.starting]\nkind = "pulse"\n',
            'gpio.patterns.starting.fade_in_s = 0.0: must be > 0 for kind = "pulse"',
        ),
        (
            "[connection]\nbackoff_initial_s = 60\nbackoff_max_s = 30\n",
            "connection.backoff_initial_s = 60.0: must not exceed connection.backoff_max_s",
        ),
        (
            "[live]\ncompression_trigger_tokens = 2000\ncompression_target_tokens = 2000\n",
            "live.compression_target_tokens = 2000: must be less than",
        ),
        (
            '[live]\nendpoint = "ws://example.com"\n',
            'live.endpoint = "ws://example.com": plain ws:// is allowed only to a loopback',
        ),
        ('[live]\nendpoint = "https://x.org"\n', "must start with wss://"),
        ('[live]\nendpoint = "wss://x.org/ws/v1"\n', "must be a base URL without a path"),
        (
            '[live]\nendpoint = "wss://x.org/?key=AIzaXYZ"\n',
            'endpoint = "wss://x.org/?…": must not',
        ),
        (
            '[live]\napi_key = "k"\n',
            "live.api_key = <secret>: an inline key is allowed only with a loopback endpoint",
        ),
        ("[conversation]\nmin_press_ms = 2000\nmax_press_s = 1\n", "must be shorter than"),
        ('[tools]\nbuiltin = ["set_volume", "set_volume"]\n', "tools.builtin[1] ="),
        (
            '[[timeline]]\nat_s = 1\naction = "release"\n',
            'timeline[0].action = "release": the button is not pressed',
        ),
        (
            '[[timeline]]\nat_s = 2\naction = "press"\n'
            '[[timeline]]\nat_s = 1\naction = "release"\n',
            "timeline[1].at_s = 1.0: must not be earlier than the step before (2)",
        ),
        ("[[timeline]]\nat_s = 2\n", "timeline[0].action: is required"),
    ],
)
def test_cross_field_rules(tmp_path: Path, text: str, expected: str) -> None:
    """Rules across settings name the key that breaks them and its value."""
    path, problems = problems_of(text, tmp_path)
    assert any(p.startswith(f"{path}: ") and expected in p for p in problems), problems


TOOL = """
[[tools.command]]
name = "disk_free"
description = "Free space."
argv = ["/usr/bin/df", "-h", "--output={field}", "{mount}"]
@EXTRA@
[tools.command.parameters]
type = "object"
required = ["mount"]
properties.mount = { type = "string" }
properties.field = { type = "string", enum = ["avail", "size"] }
"""


def tool(extra: str = "") -> str:
    return TOOL.replace("@EXTRA@", extra)


def test_command_tool_loads_with_json_schema_parameters() -> None:
    """A command tool's parameters table arrives as a JSON-ready mapping; argv as a tuple."""
    config = parse_config(tool())
    (command,) = config.tools.command
    assert command.name == "disk_free" and command.argv[2] == "--output={field}"
    assert command.parameters is not None
    assert command.parameters["required"] == ["mount"]
    assert command.timeout_s == 10.0 and command.max_output_bytes == 16_384


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            tool().replace('"{mount}"', '"{mountpoint}"'),
            'tools.command[0].argv[3] = "{mountpoint}": {mountpoint} is not a parameter',
        ),
        (
            tool().replace('"/usr/bin/df"', '"{mount}"'),
            'tools.command[0].argv[0] = "{mount}": the program itself must not be a placeholder',
        ),
        (tool().replace('"{mount}"', '"{mount!r}"'), "placeholders are plain"),
        (tool().replace('"{mount}"', '"{mount"'), "has a broken placeholder"),
        (tool().replace('"disk_free"', '"disk free"'), "must be 1-64 letters"),
        (tool().replace('"disk_free"', '"set_volume"'), "name of a built-in"),
        (tool().replace('type = "object"', 'type = "array"'), 'must be "object"'),
        (tool().replace('["mount"]', '["mnt"]'), 'required[0] = "mnt": is not in'),
        (tool() + tool(), "is already used by tools.command[0]"),
        (
            tool().replace("required = [", "minProperties = 1\nrequired = ["),
            "tools.command[0].parameters: unsupported keyword",
        ),
        (tool().replace('name = "disk_free"\n', ""), "tools.command[0].name: is req"),
        (
            tool("parameters2 = 1"),
            "tools.command[0].parameters2 = 1: unknown key; "
            "did you mean tools.command[0].parameters?",
        ),
    ],
)
def test_command_tool_rules(tmp_path: Path, text: str, expected: str) -> None:
    """Tool names are unique and valid; argv placeholders must name declared parameters."""
    _, problems = problems_of(text, tmp_path)
    assert any(expected in p for p in problems), problems


def test_parameters_must_be_json_values(tmp_path: Path) -> None:
    """A TOML date inside a JSON-schema table is rejected with its key path."""
    text = tool().replace("required = [", "default = 1979-05-27\nrequired = [")
    _, problems = problems_of(text, tmp_path)
    assert any(
        "tools.command[0].parameters.default = 1979-05-27: must be a JSON" in p for p in problems
    )


# ---- the API key ----------------------------------------------------------------------------


def key_file(tmp_path: Path, mode: int, text: str = KEY + "\n") -> Path:
    path = tmp_path / "gemini-api-key"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_key_precedence_credentials_then_env_then_file(tmp_path: Path) -> None:
    """Credential dir beats GEMINI_API_KEY beats live.api_key_file; whitespace is stripped."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "gemini-api-key").write_text("from-credentials\n")
    path = key_file(tmp_path, 0o600, "from-file\n")
    config = parse_config(f'[live]\napi_key_file = "{path}"\n')
    env = {"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": " from-env "}
    key = load_api_key(config, env)
    assert key.reveal() == "from-credentials"
    assert key.origin == "$CREDENTIALS_DIRECTORY/gemini-api-key"
    del env["CREDENTIALS_DIRECTORY"]
    assert load_api_key(config, env).reveal() == "from-env"
    assert load_api_key(config, env).origin == "$GEMINI_API_KEY"
    # A credentials directory without our credential falls through.
    assert load_api_key(config, {"CREDENTIALS_DIRECTORY": str(tmp_path / "empty")}).reveal() == (
        "from-file"
    )
    assert load_api_key(config, {}).origin == str(path)


def test_inline_key_only_for_loopback_and_wins() -> None:
    """An inline key is taken for a loopback endpoint (over the environment); refused otherwise."""
    config = parse_config('[live]\nendpoint = "ws://127.0.0.1:8765"\napi_key = "emu-key"\n')
    assert load_api_key(config, {"GEMINI_API_KEY": KEY}).reveal() == "emu-key"
    for host in ("localhost", "[::1]", "127.0.0.5"):
        parse_config(f'[live]\nendpoint = "wss://{host}:1"\napi_key = "k"\n')
    with pytest.raises(ConfigError, match="only with a loopback endpoint"):
        parse_config(f'[live]\nendpoint = "wss://127.0.0.1.evil.org"\napi_key = "{KEY}"\n')


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    """A key file with group/other permissions is refused, naming the file and its mode."""
    path = key_file(tmp_path, 0o644)
    config = parse_config(f'[live]\napi_key_file = "{path}"\n')
    with pytest.raises(ConfigError) as info:
        load_api_key(config, {})
    message = str(info.value)
    assert str(path) in message and "-rw-r--r--" in message and "0644" in message
    assert "chmod 600" in message and KEY not in message
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="0640"):
        load_api_key(config, {})
    os.chmod(path, 0o400)
    assert load_api_key(config, {}).reveal() == KEY


def test_no_key_anywhere_says_where_it_looked() -> None:
    """Without any key source the error lists all of them."""
    with pytest.raises(ConfigError) as info:
        load_api_key(Config(), {})
    message = str(info.value)
    assert "CREDENTIALS_DIRECTORY" in message and "GEMINI_API_KEY" in message
    assert "live.api_key_file" in message


def test_bad_key_text_and_missing_key_file(tmp_path: Path) -> None:
    """A key with inner whitespace, an empty key or an unreadable file fails without the value."""
    with pytest.raises(ConfigError, match=r"\$GEMINI_API_KEY: the API key contains spaces") as info:
        load_api_key(Config(), {"GEMINI_API_KEY": "AIza bad\nkey"})
    assert "bad" not in str(info.value)
    with pytest.raises(ConfigError, match="the API key is empty"):
        load_api_key(Config(), {"GEMINI_API_KEY": "  \n"})
    config = parse_config(f'[live]\napi_key_file = "{tmp_path / "absent"}"\n')
    with pytest.raises(ConfigError, match="cannot read the API key file: No such file"):
        load_api_key(config, {})


# ---- Secret ---------------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    """repr, str, format, f-strings, containers, copies and pickling never reveal the key."""
    secret = Secret(KEY, origin="test")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>80}"]
    shown += ["%s" % (secret,), "{}".format(secret)]  # noqa: UP031, UP032
    shown += [repr([secret]), repr({"k": secret}), repr(parse_config_with_inline(KEY))]
    for text in shown:
        assert KEY not in text and "AIza" not in text
    assert repr(secret) == "<secret: 39 chars>"
    assert secret.reveal() == KEY
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]
    assert secret == Secret(KEY) and secret != Secret(KEY + "x")


def parse_config_with_inline(key: str) -> Config:
    return parse_config(f'[live]\nendpoint = "ws://127.0.0.1:1"\napi_key = "{key}"\n')


def test_key_never_in_error_messages(tmp_path: Path) -> None:
    """Wherever a key-like value is misplaced, errors show <secret> instead of it."""
    texts = [
        f'[live]\napi_key = "{KEY}"\n',  # non-loopback endpoint
        f"[live]\napi_key = {{ value = '{KEY}' }}\n",  # wrong type
        f'[live]\napikey = "{KEY}"\n',  # typo of the key name
        f'[camera]\nmode = "{KEY}"\n',  # pasted into the wrong key
        f'[live]\nendpoint = "wss://h/?key={KEY}"\n',  # in the URL
        f'[live]\nendpoint = "ws://127.0.0.1:1"\napi_key = "{KEY} "\n',  # bad characters
    ]
    for text in texts:
        _, problems = problems_of(text, tmp_path)
        assert problems
        for problem in problems:
            assert KEY not in problem and KEY[:12] not in problem, problem


# ---- the shipped configs --------------------------------------------------------------------


def test_shipped_pilive_toml_is_exactly_the_defaults() -> None:
    """config/pilive.toml loads and equals the built-in defaults (no drift between them)."""
    assert load_config(SHIPPED, {}) == Config()


def test_shipped_pilive_toml_documents_every_key() -> None:
    """Every key of the schema appears in config/pilive.toml, set or as a commented example."""
    text = SHIPPED.read_text()
    for dotted in all_keys(Config):
        leaf = dotted.rsplit(".", 1)[-1]
        shown = (f"\n{leaf} = ", f"\n# {leaf} = ", f"[{dotted}]", f"[{dotted}.", f"[[{dotted}]]")
        assert any(s in text for s in shown), dotted


def test_shipped_demo_toml_loads_with_simulated_hardware() -> None:
    """config/demo.toml loads: mock GPIO, file audio, synthetic camera, loopback emulator, key."""
    config = load_config(DEMO, {"GEMINI_API_KEY": KEY})
    assert config.live.endpoint.startswith("ws://127.0.0.1:")
    assert config.gpio.pin_factory == "mock" and config.gpio.led == "rgb"
    assert config.audio.input.backend == "file" and config.audio.output.backend == "file"
    assert config.audio.input.file_path is not None and config.audio.input.file_path.is_absolute()
    assert config.camera.source == "synthetic"
    assert [s.action for s in config.timeline].count("press") >= 2
    assert config.timeline[-1].action == "stop"
    assert load_api_key(config, {"GEMINI_API_KEY": KEY}).reveal() != KEY


# ---- rendering ------------------------------------------------------------------------------


def _rich_config() -> Config:
    return parse_config(
        tool() + '\n[live]\nendpoint = "ws://127.0.0.1:9"\napi_key = "k"\nlanguage_code = "de-DE"\n'
        'system_instruction = "Say \\"hi\\"\\n\\u00e9\\u007f"\n'
        '[gpio]\nled = "rgb"\nled_pins = [5, 6, 13]\n'
        '[[timeline]]\nat_s = 1\naction = "press"\n[[timeline]]\nat_s = 2\naction = "release"\n'
    )


@pytest.mark.parametrize("config", [Config(), _rich_config()], ids=["defaults", "rich"])
def test_render_round_trips(config: Config) -> None:
    """render_toml output is valid TOML that loads back to the same config (key aside)."""
    text = render_toml(config)
    tomllib.loads(text)
    back = parse_config(text.replace("# api_key = <secret: 1 chars> (set inline)", 'api_key = "k"'))
    assert back == config


def test_render_masks_inline_key() -> None:
    """The rendered config shows an inline key only as its length."""
    text = render_toml(parse_config_with_inline(KEY))
    assert KEY not in text and "# api_key = <secret: 39 chars>" in text


def test_led_pattern_defaults_are_distinct_per_state() -> None:
    """Fault, offline and listening look different, so a user can tell them apart."""
    patterns = Config().gpio.patterns
    looks: list[Any] = [
        (p.kind, p.on_time_s, p.off_time_s, p.color)
        for p in (patterns.listening, patterns.offline, patterns.config_fault, patterns.error)
    ]
    assert len(set(looks)) == len(looks)
    assert isinstance(patterns.idle, LedPattern)
