"""wiring.py: the user's words in the config become each part's own options and devices."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pilive import wiring
from pilive.audio.capture import Capture
from pilive.audio.playback import Playback
from pilive.camera import CameraStreamer
from pilive.config import Config, parse_config
from pilive.controls.events import ApplianceState
from pilive.tools.builtin import DeviceStatusTool
from pilive.tools.command import CommandTool


def config(text: str = "") -> Config:
    return parse_config(text, environ={})


def test_push_to_talk_turns_the_servers_voice_detection_off() -> None:
    options = wiring.setup_options(config())
    assert options.vad.disabled
    assert options.response_modalities == ("AUDIO",)
    assert options.media_resolution == "MEDIA_RESOLUTION_LOW"
    assert options.activity_handling == "START_OF_ACTIVITY_INTERRUPTS"
    assert options.turn_coverage == "TURN_INCLUDES_ONLY_ACTIVITY"
    assert options.context_window_compression and options.session_resumption


def test_hands_free_tunes_the_servers_voice_detection() -> None:
    options = wiring.setup_options(
        config(
            '[conversation]\nmode = "hands-free"\n'
            '[live.vad]\nstart_sensitivity = "low"\nend_sensitivity = "high"\n'
            "silence_duration_ms = 300\n"
        )
    )
    assert not options.vad.disabled
    assert options.vad.start_of_speech_sensitivity == "START_SENSITIVITY_LOW"
    assert options.vad.end_of_speech_sensitivity == "END_SENSITIVITY_HIGH"
    assert options.vad.silence_duration_ms == 300


def test_press_timing_and_pre_roll_come_from_the_config() -> None:
    cfg = config("[conversation]\nmin_press_ms = 200\nmax_press_s = 30\n")
    timing = wiring.timing(cfg)
    assert (timing.min_press_s, timing.max_press_s) == (0.2, 30.0)
    # The capture keeps the pre-roll plus the wait for the minimum press.
    assert wiring.capture_preroll_ms(cfg) == cfg.audio.input.preroll_ms + 200


def test_led_kinds_and_every_state_pattern_map_to_the_controls() -> None:
    controls = wiring.controls_config(
        config('[gpio]\npin_factory = "mock"\nled = "rgb"\nled_pins = [5, 6, 13]\n')
    )
    assert controls.led.kind == "rgbled" and controls.led.pins == (5, 6, 13)
    assert set(controls.led.patterns) == set(ApplianceState)
    assert wiring.controls_config(config('[gpio]\nled = "pwm"\nled_pins = [5]\n')).led.kind == (
        "pwmled"
    )


def test_link_options_carry_the_connection_settings() -> None:
    cfg = config("[connection]\nbackoff_initial_s = 0.5\nbackoff_max_s = 4\n")
    options = wiring.link_options(cfg)
    assert (options.backoff_initial_s, options.backoff_max_s) == (0.5, 4.0)
    assert options.endpoint == cfg.live.endpoint


def test_tools_are_the_enabled_builtins_then_the_commands() -> None:
    cfg = config(
        '[tools]\nbuiltin = ["device_status"]\n'
        '[[tools.command]]\nname = "uptime"\ndescription = "Uptime."\nargv = ["/usr/bin/uptime"]\n'
    )
    chosen = wiring.tools(
        cfg,
        get_volume_percent=lambda: 50,
        set_volume_percent=lambda percent: None,
        start_new_conversation=lambda: None,
    )
    assert [type(t) for t in chosen] == [DeviceStatusTool, CommandTool]


def test_devices_are_built_from_the_config(tmp_path: Path) -> None:
    """Simulated devices: nothing is opened until the app starts them."""
    cfg = config(
        '[audio.input]\nbackend = "null"\n[audio.output]\nbackend = "null"\n'
        '[camera]\nsource = "synthetic"\nmode = "continuous"\n'
        f'[state]\ndirectory = "{tmp_path}"\n'
    )
    assert isinstance(wiring.capture(cfg, lambda pcm: None), Capture)
    assert isinstance(wiring.playback(cfg, lambda: None), Playback)
    camera = wiring.camera(cfg, on_frame=lambda jpeg: None, on_status=lambda state, text: None)
    assert isinstance(camera, CameraStreamer)


@pytest.mark.parametrize(
    "camera", ['source = "none"\nmode = "continuous"', 'source = "synthetic"\nmode = "off"']
)
def test_no_camera_without_a_source_or_with_mode_off(camera: str) -> None:
    cfg = config(f"[camera]\n{camera}\n")
    assert wiring.camera(cfg, on_frame=lambda jpeg: None, on_status=lambda s, t: None) is None


async def test_gpio_controls_on_mock_pins_show_and_close() -> None:
    cfg = config('[gpio]\npin_factory = "mock"\nled = "led"\nled_pins = [5]\n')
    controls = wiring.controls(cfg, loop=asyncio.get_running_loop(), on_event=lambda e: None)
    controls.show(ApplianceState.LISTENING)
    controls.close()
