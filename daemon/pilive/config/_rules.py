"""Rules that tie several settings together, checked after every field is valid on its own."""

from __future__ import annotations

import dataclasses
import os
import string
from collections.abc import Mapping
from typing import get_args

from pilive.config._reader import Problem, show_value
from pilive.config.model import BuiltinTool, CommandTool, Config, GpioConfig, TimelineStep
from pilive.control.protocol import MAX_SOCKET_PATH_BYTES
from pilive.net.endpoint import (
    endpoint_host,
    endpoint_problems,
    is_loopback_host,
    shown_endpoint,
    token_url_problems,
)
from pilive.tools.schema import check_schema

_LED_PIN_COUNT = {"none": 0, "led": 1, "pwm": 1, "rgb": 3}


class _Rules:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, key: str, value: object, message: str, *, secret: bool = False) -> None:
        self.problems.append(Problem(self.source, key, show_value(value, secret=secret), message))


def check_rules(config: Config, source: str) -> list[Problem]:
    """Every cross-field problem of an otherwise well-typed config."""
    rules = _Rules(source)
    _check_live(config, rules)
    conn = config.connection
    if conn.backoff_initial_s > conn.backoff_max_s:
        rules.problem(
            "connection.backoff_initial_s",
            conn.backoff_initial_s,
            f"must not exceed connection.backoff_max_s ({conn.backoff_max_s:g})",
        )
    for side in ("input", "output"):
        audio = getattr(config.audio, side)
        if audio.backend == "file" and audio.file_path is None:
            rules.problem(
                f"audio.{side}.backend", "file", f"needs audio.{side}.file_path (a WAV file)"
            )
    _check_room(config, rules)
    if config.camera.source == "files" and config.camera.folder is None:
        rules.problem("camera.source", "files", "needs camera.folder (a folder of JPEG images)")
    _check_gpio(config.gpio, rules)
    _check_household_pins(config, rules)
    conv = config.conversation
    if conv.follow_up_s > 0 and conv.mode == "hands-free":
        rules.problem(
            "conversation.follow_up_s",
            conv.follow_up_s,
            'is for push-to-talk: "hands-free" listens all the time anyway',
        )
    if conv.min_press_ms >= conv.max_press_s * 1000:
        rules.problem(
            "conversation.min_press_ms",
            conv.min_press_ms,
            f"must be shorter than conversation.max_press_s ({conv.max_press_s:g} s)",
        )
    _check_tools(config, rules)
    _check_timeline(config.timeline, rules)
    _check_metrics(config, rules)
    _check_control(config, rules)
    _check_mqtt(config, rules)
    return rules.problems


def _check_mqtt(config: Config, rules: _Rules) -> None:
    mqtt = config.mqtt
    if not mqtt.enabled:
        return
    if not mqtt.host:
        rules.problem("mqtt.enabled", True, "needs mqtt.host (the broker)")
    if mqtt.password_file is not None and mqtt.username is None:
        rules.problem("mqtt.password_file", str(mqtt.password_file), "needs mqtt.username")
    if mqtt.ca_file is not None and not mqtt.tls:
        rules.problem("mqtt.ca_file", str(mqtt.ca_file), "is for TLS: set mqtt.tls = true")


def _check_control(config: Config, rules: _Rules) -> None:
    path = config.control.socket
    if config.control.enabled and len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        rules.problem(
            "control.socket",
            str(path),
            f"is longer than a Unix socket path may be ({MAX_SOCKET_PATH_BYTES} bytes)",
        )


def _check_room(config: Config, rules: _Rules) -> None:
    """The simulated room joins the simulated microphone and speaker; a sound card has a room."""
    if not config.audio.room.enabled:
        return
    for side in ("input", "output"):
        backend = getattr(config.audio, side).backend
        if backend not in ("file", "null"):
            rules.problem(
                f"audio.{side}.backend",
                backend,
                'audio.room.enabled simulates a room for the "file" and "null" devices only',
            )


def _check_live(config: Config, rules: _Rules) -> None:
    live = config.live
    host = endpoint_host(live.endpoint)
    for message in endpoint_problems(live.endpoint):
        shown = "<redacted>" if "user information" in message else shown_endpoint(live.endpoint)
        rules.problem("live.endpoint", shown, message)
    if live.api_key is not None:
        if live.api_key_file is not None:
            rules.problem(
                "live.api_key", live.api_key, "give api_key or api_key_file, not both", secret=True
            )
        if not (host and is_loopback_host(host)):
            rules.problem(
                "live.api_key",
                live.api_key,
                "an inline key is allowed only with a loopback endpoint (a local emulator); "
                "for the real service use systemd LoadCredential, GEMINI_API_KEY or "
                "live.api_key_file",
                secret=True,
            )
        problem = key_text_problem(live.api_key.reveal())
        if problem:
            rules.problem("live.api_key", live.api_key, problem, secret=True)
    _check_token_url(config, rules)
    if live.compression_target_tokens >= live.compression_trigger_tokens:
        rules.problem(
            "live.compression_target_tokens",
            live.compression_target_tokens,
            "must be less than live.compression_trigger_tokens "
            f"({live.compression_trigger_tokens})",
        )
    _check_generation(config, rules)


def _check_generation(config: Config, rules: _Rules) -> None:
    """The thinking and transcription keys that exclude or need each other (which model takes
    which is a warning of `pilive check`, from the model table)."""
    live = config.live
    if live.thinking_budget is not None and live.thinking_level is not None:
        rules.problem(
            "live.thinking_level",
            live.thinking_level,
            f"give live.thinking_budget ({live.thinking_budget}) or live.thinking_level, not "
            "both: 2.5 models take a budget, 3.x models a level",
        )
    languages = live.input_transcription_languages
    if languages and not live.input_transcription:
        rules.problem(
            "live.input_transcription_languages",
            list(languages),
            "needs live.input_transcription = true (they are hints for that transcription)",
        )
    seen: set[str] = set()
    for index, code in enumerate(languages):
        if code in seen:
            rules.problem(f"live.input_transcription_languages[{index}]", code, "is listed twice")
        seen.add(code)


def _check_token_url(config: Config, rules: _Rules) -> None:
    """Ephemeral tokens from a token service: exclusive with a key, on v1alpha (the only
    version with BidiGenerateContentConstrained)."""
    live = config.live
    if live.token_url is None:
        for key in ("device_token_file", "token_ca_file"):
            if getattr(live, key) is not None:
                rules.problem(f"live.{key}", str(getattr(live, key)), "needs live.token_url")
        return
    shown = live.token_url.split("?", 1)[0]
    for message in token_url_problems(live.token_url):
        rules.problem("live.token_url", shown, message)
    for key in ("api_key", "api_key_file"):
        if getattr(live, key) is not None:
            rules.problem(
                f"live.{key}",
                getattr(live, key),
                "a device with live.token_url holds no API key: remove the key",
                secret=key == "api_key",
            )
    if live.api_version != "v1alpha":
        rules.problem(
            "live.api_version",
            live.api_version,
            'ephemeral tokens (live.token_url) work only on "v1alpha" '
            "(BidiGenerateContentConstrained)",
        )


def _check_metrics(config: Config, rules: _Rules) -> None:
    metrics = config.metrics
    if metrics.textfile is not None and metrics.textfile.suffix != ".prom":
        rules.problem(
            "metrics.textfile",
            str(metrics.textfile),
            'must end in ".prom" (node-exporter\'s textfile collector reads only those)',
        )
    if metrics.listen is not None:
        port = int(metrics.listen.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            rules.problem("metrics.listen", metrics.listen, "the port must be 1-65535")


def key_text_problem(key: str) -> str:
    """Why a key's text cannot go into an HTTP header, or "" when it can."""
    if not key:
        return "is empty"
    if any(not ch.isprintable() or ch.isspace() for ch in key) or not key.isascii():
        return "contains spaces, control or non-ASCII characters"
    return ""


def _check_gpio(gpio: GpioConfig, rules: _Rules) -> None:
    wanted = _LED_PIN_COUNT[gpio.led]
    if len(gpio.led_pins) != wanted:
        need = {0: "no pins", 1: "one pin", 3: "three pins (red, green, blue)"}[wanted]
        rules.problem("gpio.led_pins", list(gpio.led_pins), f'led = "{gpio.led}" takes {need}')
    if gpio.new_conversation_pin is not None and gpio.new_conversation_pin == gpio.button_pin:
        rules.problem(
            "gpio.new_conversation_pin",
            gpio.new_conversation_pin,
            "must differ from gpio.button_pin",
        )
    buttons = {gpio.button_pin, gpio.new_conversation_pin}
    seen: set[int] = set()
    for index, pin in enumerate(gpio.led_pins):
        if pin in buttons:
            rules.problem(f"gpio.led_pins[{index}]", pin, "is already used by a button")
        elif pin in seen:
            rules.problem(f"gpio.led_pins[{index}]", pin, "is listed twice")
        seen.add(pin)
    for state in dataclasses.fields(gpio.patterns):
        pattern = getattr(gpio.patterns, state.name)
        if pattern.kind != "pulse":
            continue
        for name in ("fade_in_s", "fade_out_s"):
            if getattr(pattern, name) <= 0:
                # gpiozero cannot pulse without fades; said here, not as a traceback at start.
                key = f"gpio.patterns.{state.name}.{name}"
                rules.problem(key, getattr(pattern, name), 'must be > 0 for kind = "pulse"')


# The household controls' pins: each must be free, and they need the GPIO button backend.
_HOUSEHOLD_PINS = ("mute_pin", "privacy_led_pin", "volume_up_pin", "volume_down_pin")


def _check_household_pins(config: Config, rules: _Rules) -> None:
    gpio = config.gpio
    taken: dict[int, str] = {gpio.button_pin: "gpio.button_pin"}
    if gpio.new_conversation_pin is not None:
        taken.setdefault(gpio.new_conversation_pin, "gpio.new_conversation_pin")
    for index, led_pin in enumerate(gpio.led_pins):
        taken.setdefault(led_pin, f"gpio.led_pins[{index}]")
    for name in _HOUSEHOLD_PINS:
        pin = getattr(gpio, name)
        if pin is None:
            continue
        key = f"gpio.{name}"
        if config.conversation.button_backend != "gpio":
            rules.problem(key, pin, 'needs conversation.button_backend = "gpio"')
        elif pin in taken:
            rules.problem(key, pin, f"is already used by {taken[pin]}")
        taken.setdefault(pin, key)


def _check_tools(config: Config, rules: _Rules) -> None:
    tools = config.tools
    seen_builtin: set[str] = set()
    for index, name in enumerate(tools.builtin):
        if name in seen_builtin:
            rules.problem(f"tools.builtin[{index}]", name, "is listed twice")
        seen_builtin.add(name)
    names: dict[str, int] = {}
    for index, tool in enumerate(tools.command):
        prefix = f"tools.command[{index}]"
        if tool.name in names:
            rules.problem(
                f"{prefix}.name", tool.name, f"is already used by tools.command[{names[tool.name]}]"
            )
        elif tool.name in (*get_args(BuiltinTool), "google_search"):
            rules.problem(f"{prefix}.name", tool.name, "is the name of a built-in tool")
        names.setdefault(tool.name, index)
        _check_command(tool, prefix, rules)


def _check_command(tool: CommandTool, prefix: str, rules: _Rules) -> None:
    declared = _check_parameters(tool.parameters, f"{prefix}.parameters", rules)
    if tool.behavior == "blocking" and tool.scheduling != "when-idle":
        rules.problem(
            f"{prefix}.scheduling",
            tool.scheduling,
            'only a non-blocking tool\'s result is scheduled; set behavior = "non-blocking"',
        )
    if not tool.argv:
        rules.problem(f"{prefix}.argv", [], "must name a program to run")
        return
    formatter = string.Formatter()
    for index, element in enumerate(tool.argv):
        key = f"{prefix}.argv[{index}]"
        try:
            parsed = list(formatter.parse(element))
        except ValueError as exc:
            rules.problem(key, element, f"has a broken placeholder ({exc}); write {{{{ for {{")
            continue
        for _literal, field_name, spec, conversion in parsed:
            if field_name is None:
                continue
            if index == 0:
                rules.problem(key, element, "the program itself must not be a placeholder")
            elif spec or conversion or not field_name.isidentifier():
                rules.problem(key, element, "placeholders are plain {name}, without : ! . or [")
            elif field_name not in declared:
                hint = ""
                if declared:
                    hint = "; declared: " + ", ".join(sorted(declared))
                rules.problem(
                    key,
                    element,
                    f"{{{field_name}}} is not a parameter in {prefix}.parameters.properties{hint}",
                )


def _check_parameters(parameters: Mapping[str, object] | None, key: str, rules: _Rules) -> set[str]:
    """The declared parameter names, after checking the schema: its outer shape here, then every
    keyword against the subset the tools module supports, so `pilive check` and the daemon's
    start both name a bad schema as a config problem instead of failing later."""
    if parameters is None:
        return set()
    before = len(rules.problems)
    if parameters.get("type") != "object":
        rules.problem(f"{key}.type", parameters.get("type"), 'must be "object"')
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict):
        rules.problem(f"{key}.properties", properties, "must be a table of parameter schemas")
        return set()
    for name, schema in properties.items():
        if not isinstance(schema, dict):
            rules.problem(f"{key}.properties.{name}", schema, "must be a table (a JSON schema)")
    required = parameters.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        rules.problem(f"{key}.required", required, "must be an array of parameter names")
    else:
        for index, name in enumerate(required):
            if name not in properties:
                rules.problem(f"{key}.required[{index}]", name, "is not in properties")
    if len(rules.problems) == before:
        try:
            check_schema(parameters, key)
        except ValueError as exc:
            rules.problem(key, "(the schema)", str(exc))
    return set(properties)


def _check_timeline(timeline: tuple[TimelineStep, ...], rules: _Rules) -> None:
    pressed = False
    previous_s = 0.0
    for index, step in enumerate(timeline):
        key = f"timeline[{index}]"
        if step.at_s < previous_s:
            rules.problem(
                f"{key}.at_s",
                step.at_s,
                f"must not be earlier than the step before ({previous_s:g})",
            )
        previous_s = max(previous_s, step.at_s)
        if step.action == "press":
            if pressed:
                rules.problem(f"{key}.action", "press", "the button is already pressed")
            pressed = True
        elif step.action == "release":
            if not pressed:
                rules.problem(f"{key}.action", "release", "the button is not pressed")
            pressed = False
        elif step.action == "stop" and index != len(timeline) - 1:
            rules.problem(f"{key}.action", "stop", "must be the last step")
