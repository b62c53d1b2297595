"""The PulseAudio null-sink rig: real PortAudio -> ALSA -> PulseAudio devices, paced in real time.

A private PulseAudio server (HOME and XDG_RUNTIME_DIR in a temp dir, so parallel rigs never meet)
with null sinks:
- `spk`   24000 Hz mono: the speaker; `parec -d spk.monitor` records what was played.
- `spk48` 48000 Hz mono: a speaker that makes Playback resample.
- `mic`   16000 Hz mono: `paplay -d mic` is what the microphone hears, on `mic.monitor`.
`~/.asoundrc` points ALSA's default at pulse and names the devices PortAudio lists:
`pilive_spk`, `pilive_spk48`, `pilive_mic`. PortAudio reads ALSA's configuration when it is
initialised, so create the PyAudio backend (the `pyaudio_backend` fixture) after the rig is up.

Use it from a test module with `from tests.support.pulse_rig import pulse_rig, pyaudio_backend`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pilive.audio.backends.portaudio import PyAudioBackend

SINKS = (
    "sink_name=spk rate=24000 channels=1",
    "sink_name=spk48 rate=48000 channels=1",
    "sink_name=mic rate=16000 channels=1",
)
ASOUNDRC = """\
pcm.!default { type pulse }
ctl.!default { type pulse }
pcm.pilive_spk { type pulse device spk }
pcm.pilive_spk48 { type pulse device spk48 }
pcm.pilive_mic { type pulse device mic.monitor }
"""


class PulseRig:
    """A private pulseaudio server this process started, and helpers to play and record."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime_dir = root / "run"
        self.home.mkdir()
        self.runtime_dir.mkdir(mode=0o700)
        (self.home / ".asoundrc").write_text(ASOUNDRC)
        self.env = dict(os.environ, HOME=str(self.home), XDG_RUNTIME_DIR=str(self.runtime_dir))
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        args = ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n"]
        args += ["--load=module-native-protocol-unix"]
        args += [f"--load=module-null-sink {sink}" for sink in SINKS]
        self.process = subprocess.Popen(
            args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "pulseaudio.log").open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while self.pactl_ok("info") is False:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio did not start; see {self.root}/pulseaudio.log")
            time.sleep(0.05)
        self.pactl("set-default-sink", "spk")
        self.pactl("set-default-source", "mic.monitor")

    def kill(self) -> None:
        """SIGKILL the server (a crash, as far as clients can tell) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
        self.restarts += 1

    def pactl_ok(self, *args: str) -> bool:
        result = subprocess.run(["pactl", *args], env=self.env, capture_output=True, check=False)
        return result.returncode == 0

    def pactl(self, *args: str) -> None:
        subprocess.run(["pactl", *args], env=self.env, capture_output=True, check=True)

    def play(self, wav: Path, sink: str = "mic") -> subprocess.Popen[bytes]:
        """Plays a WAV file into a sink (into the microphone, by default)."""
        return subprocess.Popen(["paplay", "-d", sink, str(wav)], env=self.env)

    def record(self, source: str, rate_hz: int, path: Path) -> subprocess.Popen[bytes]:
        """Records raw s16le mono from a source (`spk.monitor`) into `path` until terminated."""
        args = ["parec", "-d", source, f"--rate={rate_hz}", "--channels=1", "--format=s16le"]
        args += ["--raw", "--latency-msec=10"]
        return subprocess.Popen(args, env=self.env, stdout=path.open("wb"))


def stop_recording(recorder: subprocess.Popen[bytes], path: Path) -> np.ndarray:
    """Stops parec and returns what it recorded as int16 samples."""
    recorder.terminate()
    recorder.wait(10)
    data = path.read_bytes()
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def write_wav(path: Path, samples: np.ndarray, rate_hz: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        data = wav.readframes(wav.getnframes())
        return np.frombuffer(data, dtype="<i2"), wav.getframerate()


@pytest.fixture(scope="session")
def pulse_rig() -> Iterator[PulseRig]:
    """A private PulseAudio server with null sinks, torn down (killed) at the end of the session.

    HOME and XDG_RUNTIME_DIR are pointed at it for the whole process, because libasound and its
    pulse plugin read them when a device is opened.
    """
    missing = [p for p in ("pulseaudio", "pactl", "paplay", "parec") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"PulseAudio rig needs {', '.join(missing)} (apt install pulseaudio-utils)")
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_RUNTIME_DIR")}
    with tempfile.TemporaryDirectory(prefix="pulse-rig-") as tmp:
        rig = PulseRig(Path(tmp))
        rig.start()
        os.environ.update(HOME=str(rig.home), XDG_RUNTIME_DIR=str(rig.runtime_dir))
        try:
            yield rig
        finally:
            rig.kill()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def pyaudio_backend(pulse_rig: PulseRig) -> Iterator[PyAudioBackend]:
    """PortAudio, initialised after the rig so it sees the rig's ALSA devices."""
    backend = PyAudioBackend()
    names = [d.name for d in backend.devices()]
    assert "pilive_spk" in names, f"PortAudio does not list the rig's ALSA devices (has {names})"
    yield backend
    backend.close()


# --- signal analysis shared by the rig tests and the benchmark ---------------------------------


def chirp(
    seconds: float, rate_hz: int, *, low_hz: float = 200.0, high_hz: float = 3000.0
) -> np.ndarray:
    """A linear sweep at -8 dBFS: every position in it is unique, so alignment is unambiguous."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    phase = 2 * np.pi * (low_hz * t + (high_hz - low_hz) * t**2 / (2 * seconds))
    return (13000 * np.sin(phase)).astype(np.int16)


def align(recording: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """(offset of `reference` inside `recording`, normalised correlation at that offset)."""
    x = recording.astype(np.float64)
    r = reference.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(x) + len(r))))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(r, n)), n)[: len(x)]
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    window = energy[np.minimum(np.arange(len(x)) + len(r), len(x))] - energy[: len(x)]
    ncc = corr / (np.sqrt(np.maximum(window, 1e-9)) * np.sqrt(np.dot(r, r)))
    offset = int(np.argmax(ncc))
    return offset, float(ncc[offset])


def without_silent_gaps(recording: np.ndarray, min_run: int) -> tuple[np.ndarray, int]:
    """The recording with every run of at least `min_run` exact zeros taken out, and how many
    there were. A device that starves (its callback not run in time on a loaded machine, which
    PortAudio reports as an output underflow) plays silence there; taking it out leaves what the
    ring handed over, so a drop, a repeat or a reordering by the daemon still shows."""
    silent = np.concatenate(([False], recording == 0, [False]))
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    keep = np.ones(len(recording), dtype=bool)
    runs = 0
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= min_run:
            keep[start:end] = False
            runs += 1
    return recording[keep], runs


def glitches(recording: np.ndarray, reference: np.ndarray, window: int) -> tuple[int, list[int]]:
    """Aligns the reference in the recording and returns (offset, windows whose residual is above
    -20 dB of the reference). A gap, a repeat or a dropped block shifts everything after it, so it
    shows up as a run of bad windows; a recording that stops early counts its missing windows."""
    offset, _ = align(recording, reference)
    seg = recording[offset : offset + len(reference)].astype(np.float64)
    ref = reference.astype(np.float64)
    bad = []
    for start in range(0, len(ref) - window + 1, window):
        r = ref[start : start + window]
        s = seg[start : start + window]
        if len(s) < window or np.sum((s - r) ** 2) > 0.01 * np.sum(r * r):
            bad.append(start)
    return offset, bad
