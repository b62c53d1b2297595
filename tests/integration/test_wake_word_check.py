"""The wake word where its package is missing (32-bit Raspberry Pi OS has no wheel) and where it
is present: `pilive check` says which, and the daemon starts either way.

"Missing" is made real for the process under test: `sys.modules["pymicro_wakeword"] = None`
makes every import of it fail and `importlib.util.find_spec` report it absent, as on a machine
where pip installed nothing for it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pilive.controls.events import ButtonPressed, ButtonReleased
from pilive.live.events import LinkState
from tests.support.emulator_rig import emulator_options, running
from tests.support.room_rig import in_room, room_config, speak, write_track

KEY = "AIzaSyD-test-key-0123456789abcdefghijkl"
HIDE = "import sys; sys.modules['pymicro_wakeword'] = None\n"
CHECK = (
    "from pilive.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "heavy = {'numpy', 'pymicro_wakeword', 'websockets', 'asyncio'} & set(sys.modules)\n"
    "print('HEAVY', sorted(m for m in heavy if sys.modules[m] is not None)); sys.exit(rc)\n"
)


def check(tmp_path: Path, text: str, *, hidden: bool) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pilive.toml"
    config.write_text(text)
    code = ("import sys\n" + HIDE if hidden else "import sys\n") + CHECK
    env = {**os.environ, "GEMINI_API_KEY": KEY}
    return subprocess.run(
        [sys.executable, "-c", code, "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


SIMULATED = """
[audio.input]
backend = "null"
[audio.output]
backend = "null"
[camera]
source = "none"
[gpio]
pin_factory = "mock"
[conversation]
wake_word = "okay_nabu"
"""


def test_check_says_the_wake_word_is_active_and_loads_nothing_for_it(tmp_path: Path) -> None:
    """With the package: exit 0, "active", the echo path cancels (it listens over the answer),
    and the check itself imports neither the package nor numpy."""
    pytest.importorskip("pymicro_wakeword")
    result = check(tmp_path, SIMULATED, hidden=False)
    assert result.returncode == 0, result.stderr
    assert "# wake word 'okay_nabu' active" in result.stdout
    assert "# microphone: echo cancel (wake word: heard over the answer" in result.stdout
    assert "HEAVY []" in result.stdout


def test_check_says_why_the_wake_word_is_off_without_its_package(tmp_path: Path) -> None:
    """Without the package: still exit 0 (the button works), and the line names the package and
    the architectures it exists for; the echo path stays as push-to-talk has it."""
    result = check(tmp_path, SIMULATED, hidden=True)
    assert result.returncode == 0, result.stderr
    assert (
        "# wake word 'okay_nabu' off: pymicro-wakeword is not installed (its wheels exist for "
        "x86-64 and aarch64 only" in result.stdout
    )
    assert "# microphone: echo off (push-to-talk" in result.stdout


async def test_the_daemon_runs_without_the_package_and_a_press_still_makes_a_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wake_word = "okay_nabu" where the package is missing: the daemon starts, STATUS says the
    wake word is off and why, and the button still starts a turn the emulator answers."""
    monkeypatch.setitem(sys.modules, "pymicro_wakeword", None)
    write_track(tmp_path / "mic.wav", 8.0, [(0.3, speak("What time is it?"))])
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path, emu, conversation='mode = "push-to-talk"\nwake_word = "okay_nabu"'
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: bool(room.noted("ready")), 10)
            assert room.app.wake is None
            assert "wake word 'okay_nabu' off: pymicro-wakeword is not installed" in (
                room.app._status_text()
            )
            await room.until(lambda: room.app.link.status.state is LinkState.CONNECTED, 10)
            loop = asyncio.get_running_loop()
            room.app._on_control_event(ButtonPressed(loop.time()))
            await room.until(lambda: bool(room.noted("activityStart sent")), 10)
            await asyncio.sleep(1.0)
            room.app._on_control_event(ButtonReleased(loop.time()))
            await room.until(lambda: emu.recording.counters["turns"] == 1, 10)
            await room.until(lambda: bool(room.noted("answer played out")), 20)


async def test_hands_free_without_the_package_streams_nothing_until_a_press(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hands-free with a wake word the machine cannot hear (package missing): the owner chose a
    speaker that does not stream the room, so the microphone stays on the device (the speech
    before the press never reaches the emulator), and a press opens it as the word would: the
    server's voice detection ends that turn and it is answered."""
    monkeypatch.setitem(sys.modules, "pymicro_wakeword", None)
    write_track(
        tmp_path / "mic.wav",
        10.0,
        [(0.3, speak("Nobody asked you anything.")), (5.0, speak("What time is it?"))],
    )
    async with running(emulator_options()) as emu:
        config = room_config(
            tmp_path, emu, conversation='mode = "hands-free"\nwake_word = "okay_nabu"'
        )
        async with in_room(config, emu) as room:
            await room.until(lambda: room.app.link.status.state is LinkState.CONNECTED, 10)
            assert room.app.wake is None
            await asyncio.sleep(3.0)  # the first sentence is said in the room
            assert not room.app.conversation.mic_open
            assert emu.recording.audio_bytes() == b""
            room.app._on_control_event(ButtonPressed(asyncio.get_running_loop().time()))
            assert room.app.conversation.mic_open
            await room.until(lambda: emu.recording.counters["turns"] == 1, 20)
            assert emu.recording.turn(None, 1).source == "vad"
            await room.until(lambda: bool(room.noted("answer played out")), 30)
            assert not room.app.conversation.mic_open
