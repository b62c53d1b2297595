"""What a valid configuration will not do as written: said by `pilive check` and logged by the
daemon at start, from this one place.

Standard library and pure modules only (the config, the model table, host classification), so
`pilive check` stays light and the daemon does not import a command-line module to say them.
"""

from __future__ import annotations

from pilive.config import Config
from pilive.live.models import GenerationRequest, setup_warnings, takes_non_blocking
from pilive.net.endpoint import is_loopback_host


def model_warnings(config: Config) -> list[str]:
    """What the chosen model will not do with these options, then the tools' and MQTT's."""
    tools = config.tools
    live = config.live
    warnings = setup_warnings(
        live.model,
        api_version=live.api_version,
        response_modality=live.response_modality,
        has_functions=bool(tools.builtin or tools.command),
        generation=GenerationRequest(
            thinking_budget=live.thinking_budget,
            thinking_level=live.thinking_level,
            include_thoughts=live.include_thoughts,
            affective_dialog=live.affective_dialog,
            proactive_audio=live.proactive_audio,
            temperature=live.temperature,
            max_output_tokens=live.max_output_tokens,
        ),
    )
    return warnings + tool_warnings(config) + mqtt_warnings(config)


def tool_warnings(config: Config) -> list[str]:
    """Command tools asked to run non-blocking on a model that runs calls synchronously only:
    they fall back to blocking (the model waits for each result)."""
    if takes_non_blocking(config.live.model):
        return []
    model = config.live.model.removeprefix("models/")
    return [
        f'tools.command[{index}].behavior = "non-blocking": {model!r} runs function calls '
        f"synchronously only, so {command.name!r} is declared blocking (the model waits for it)"
        for index, command in enumerate(config.tools.command)
        if command.behavior == "non-blocking"
    ]


def mqtt_warnings(config: Config) -> list[str]:
    """A broker password sent without TLS to another machine crosses the network readable by
    anyone on it. Common on a home LAN, so said plainly rather than refused."""
    mqtt = config.mqtt
    if not mqtt.enabled or mqtt.tls or mqtt.password_file is None:
        return []
    if is_loopback_host(mqtt.host):
        return []
    return [
        f"mqtt.tls = false: the password in mqtt.password_file goes to {mqtt.host!r} unencrypted; "
        "set mqtt.tls = true (and mqtt.ca_file if the broker's certificate is your own)"
    ]
