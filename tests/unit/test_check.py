"""`pilive check`: exit codes, problems on stderr, the resolved config on stdout, key masked."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tomllib
import types
import wave
from pathlib import Path

import pytest

from pilive import check
from pilive.config import Config, parse_config

ROOT = Path(__file__).resolve().parents[2]
KEY = "AIzaSyD-test-key-0123456789abcdefghijkl"


def run_check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pilive check")
    check.configure_parser(parser)
    return check.run(parser.parse_args(argv))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("GEMINI_API_KEY", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "RUNTIME_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def on_a_pi(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `lgpio` module, so the Pi config's default pin factory finds its library."""
    monkeypatch.setitem(sys.modules, "lgpio", types.ModuleType("lgpio"))


def write_wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(320))
    return path


def test_valid_config_prints_resolved_toml_with_masked_key(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], on_a_pi: None
) -> None:
    """A valid config and key exit 0; stdout is loadable TOML equal to the config; key masked."""
    clean_env.setenv("GEMINI_API_KEY", KEY)
    assert run_check(["--config", str(ROOT / "config" / "pilive.toml")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert KEY not in out and "AIza" not in out
    assert "# API key: <secret: 39 chars> from $GEMINI_API_KEY" in out
    assert parse_config(out) == Config()
    tomllib.loads(out)


def test_demo_config_checks_clean(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The shipped demo config passes with its inline emulator key, shown only as a length,
    once its microphone WAV exists (`pilive demo` writes it to ../demo-run before it starts)."""
    config = tmp_path / "config" / "demo.toml"
    config.parent.mkdir()
    config.write_text((ROOT / "config" / "demo.toml").read_text())
    write_wav(tmp_path / "demo-run" / "speech.wav")
    assert run_check(["--config", str(config)]) == 0
    out, _ = capsys.readouterr()
    assert "pilive-demo-key" not in out
    assert "# api_key = <secret: 15 chars> (set inline)" in out
    assert 'pin_factory = "mock"' in out and "[[timeline]]" in out


def test_invalid_config_exits_2_with_every_problem_on_stderr(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad settings exit 2; stderr lists each problem with file, key and value; stdout empty."""
    path = tmp_path / "bad.toml"
    path.write_text('[camera]\nfps = 5\n[audio.input]\nchunk_msec = 20\nbackend = "alsa"\n')
    clean_env.setenv("GEMINI_API_KEY", KEY)
    assert run_check(["--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path} is not usable (3 problems)" in err
    assert f"{path}: camera.fps = 5: must be more than 0 and at most 1" in err
    assert "audio.input.chunk_msec = 20: unknown key; did you mean audio.input.chunk_ms?" in err
    assert 'audio.input.backend = "alsa": must be one of "pyaudio", "file", "null"' in err


def test_missing_file_and_missing_key_exit_2(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, or a valid file with no API key anywhere, exits 2 and says why."""
    assert run_check(["--config", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read the config file" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert run_check(["--config", str(empty)]) == 2
    assert "no API key found" in capsys.readouterr().err


def test_refused_key_file_exits_2_without_the_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group-readable key file is refused with its name and mode, never its content."""
    key_file = tmp_path / "gemini-api-key"
    key_file.write_text(KEY)
    os.chmod(key_file, 0o644)
    config = tmp_path / "pilive.toml"
    config.write_text(f'[live]\napi_key_file = "{key_file}"\n')
    assert run_check(["--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert str(key_file) in err and "0644" in err
    assert KEY not in out + err


def test_runs_as_a_program_on_a_machine_without_hardware_libraries(tmp_path: Path) -> None:
    """In a fresh interpreter the check runs without importing audio, GPIO or network modules."""
    code = (
        "import sys, argparse; from pilive import check\n"
        "p = argparse.ArgumentParser(); check.configure_parser(p)\n"
        "rc = check.run(p.parse_args(sys.argv[1:]))\n"
        "heavy = {'numpy', 'pyaudio', 'gpiozero', 'websockets', 'asyncio'} & set(sys.modules)\n"
        "print('HEAVY', sorted(heavy)); sys.exit(rc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    env["GEMINI_API_KEY"] = KEY
    # The Pi config's pin factory needs lgpio: a stand-in module, as python3-lgpio would be.
    (tmp_path / "lgpio.py").write_text("")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code, "--config", str(ROOT / "config" / "pilive.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert KEY not in result.stdout + result.stderr


def _deep_schema(levels: int) -> str:
    """A TOML inline table: `levels` objects nested through one property each."""
    schema = '{ type = "string" }'
    for _ in range(levels):
        schema = f'{{ type = "object", properties = {{ a = {schema} }} }}'
    return schema


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            '[gpio]\npin_factory = "lgpio"\n',
            'gpio.pin_factory = "lgpio": needs the Python module lgpio, which is not installed: '
            "sudo apt install python3-lgpio",
        ),
        (
            '[gpio]\npin_factory = "pigpio"\n',
            'gpio.pin_factory = "pigpio": needs the Python module pigpio, which is not installed: '
            "sudo apt install python3-pigpio",
        ),
        (
            '[audio.input]\nbackend = "file"\nfile_path = "absent.wav"\n',
            'absent.wav": no such file',
        ),
        (
            '[audio.input]\nbackend = "file"\nfile_path = "pilive.toml"\n',
            'pilive.toml": not a PCM WAV file',
        ),
        (
            '[audio.input]\nbackend = "file"\nfile_path = "."\n',
            "is a directory, not a WAV file",
        ),
        (
            '[[tools.command]]\nname = "deep"\ndescription = "d"\nargv = ["/bin/true"]\n'
            f"parameters = {_deep_schema(35)}\n",
            "tools.command[0].parameters: the Live API setup refuses it:",
        ),
    ],
    ids=[
        "lgpio-missing",
        "pigpio-missing",
        "wav-missing",
        "not-a-wav",
        "wav-is-a-directory",
        "schema-nested-past-64",
    ],
)
def test_check_reports_what_run_would_refuse_at_start(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    expected: str,
) -> None:
    """Faults the file's syntax does not show but `pilive run` would stop on at start (a GPIO
    library not installed, a microphone WAV missing, not a WAV or a directory, a tool schema the
    setup message refuses) make check exit 2 naming the key, the value and the fix. On today's
    main check accepted all of them and run ended in a traceback."""
    for module in ("lgpio", "pigpio"):
        clean_env.setitem(sys.modules, module, None)  # not importable, even on a Pi
    clean_env.setenv("GEMINI_API_KEY", KEY)
    path = tmp_path / "pilive.toml"
    base = "" if "[gpio]" in setting else '[gpio]\npin_factory = "mock"\n'
    path.write_text(base + setting)
    assert run_check(["--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("camera", "expected"),
    [
        ('source = "synthetic"\nfps = 0.5\n', "camera: synthetic, 768 px JPEG at 0.5 fps"),
        ('source = "none"\n', "camera off"),
        ('source = "synthetic"\nmode = "off"\n', "camera off"),
    ],
)
def test_check_says_what_the_camera_sends_and_with_which_encoder(
    camera: str, expected: str
) -> None:
    """The camera line names the source, size, rate and mode, and the installed Pillow that
    encodes the frames; a camera that is off says only that."""
    config = parse_config(f"[camera]\n{camera}", source="t.toml", base_dir=ROOT, environ={})
    said = check.camera_description(config)
    assert said.startswith(expected), said
    if expected != "camera off":
        assert said.endswith(" encodes") and "Pillow " in said


def test_check_says_when_the_pi_camera_library_is_missing() -> None:
    """picamera2 is not on this build machine (Raspberry Pi OS ships it): asked for the Pi
    camera, the check says no frames will go out and which package brings it."""
    pytest.importorskip("PIL")
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    config = parse_config('[camera]\nsource = "picamera2"\n', source="t.toml", environ={})
    said = check.camera_description(config)
    assert "no frames will go out: picamera2 is not installed" in said
    assert "sudo apt install python3-picamera2" in said
