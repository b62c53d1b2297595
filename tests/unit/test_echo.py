"""The microphone's echo path: the cancellers on the simulated room, the reference alignment,
the half-duplex gate, the fallback when a library is missing, and the thread around them."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from pilive.audio._ringbuf import RingBuffer
from pilive.audio.cancellers import FRAME_SAMPLES, RATE_HZ, open_processor, unavailable_reason
from pilive.audio.echo import WARM_UP_FRAMES, EchoProcessor, PlaybackReference
from pilive.audio.echo_mode import EchoPlan, EchoSettings, expected, plan_echo
from pilive.audio.room import RoomOptions, echo_of
from tests.support.room_rig import speak

AGC_SPEECH = (
    "The weather today is mostly sunny with a light breeze from the west, and tomorrow rain."
)


def voice_like(seconds: float, seed: int) -> np.ndarray:
    """Harmonics of a wandering pitch under a syllable-rate envelope: speech-like enough for
    an adaptive filter (broadband, non-stationary), and made here without a synthesiser."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * np.arange(n) / RATE_HZ + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE_HZ
    wave = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE_HZ) ** 2
    signal = wave * envelope + rng.standard_normal(n) * 0.05
    return np.asarray(signal / np.sqrt(np.mean(signal**2)) * 0.1)  # -20 dBFS


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(np.round(x * 32768), -32768, 32767), dtype=np.int16)


def run_frames(name: str, near: np.ndarray, far: np.ndarray) -> np.ndarray:
    processor = open_processor(name)  # type: ignore[arg-type]
    out = np.zeros_like(near)
    for i in range(0, len(near) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        out[i : i + FRAME_SAMPLES] = processor.process(
            near[i : i + FRAME_SAMPLES].copy(), far[i : i + FRAME_SAMPLES].copy()
        )
    return out


@pytest.mark.parametrize(("name", "min_erle_db"), [("webrtc", 18.0), ("speex", 6.0)])
def test_each_canceller_removes_the_rooms_echo(name: str, min_erle_db: float) -> None:
    """The speaker's voice through the room (RT60 300 ms, 40 ms latency) is removed from the
    microphone: over the last two of six seconds the echo is at least `min_erle_db` down."""
    far = voice_like(6.0, seed=1)
    mic = echo_of(far, RATE_HZ, RoomOptions())
    out = run_frames(name, to_int16(mic), to_int16(far)).astype(np.float64) / 32768
    tail = slice(4 * RATE_HZ, 6 * RATE_HZ)
    erle_db = 10 * np.log10(np.mean(mic[tail] ** 2) / np.mean(out[tail] ** 2))
    assert erle_db >= min_erle_db


@pytest.mark.parametrize("name", ["webrtc", "speex"])
def test_each_canceller_keeps_the_user_when_the_speaker_is_silent(name: str) -> None:
    """No far-end sound: the user's voice passes at its level (within 3 dB)."""
    user = voice_like(3.0, seed=2)
    out = run_frames(name, to_int16(user), np.zeros(len(user), np.int16)).astype(np.float64)
    kept_db = 10 * np.log10(np.mean((out[RATE_HZ:] / 32768) ** 2) / np.mean(user[RATE_HZ:] ** 2))
    assert abs(kept_db) < 3.0


def test_auto_cancels_in_hands_free_and_is_off_in_push_to_talk() -> None:
    hands_free = plan_echo(EchoSettings(), hands_free=True)
    assert hands_free.mode == "cancel" and hands_free.processor is not None
    assert "AEC3" in hands_free.describe()
    push = plan_echo(EchoSettings(), hands_free=False)
    assert (push.mode, push.active) == ("off", False)
    assert "a press silences the speaker" in push.describe()


def test_a_missing_canceller_falls_back_to_half_duplex_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pywebrtc-audio not importable (None in sys.modules is how Python marks a module absent):
    cancel becomes half-duplex, and the reason names the package to install."""
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)
    assert "pywebrtc-audio" in (unavailable_reason("webrtc") or "")
    plan = plan_echo(EchoSettings(mode="cancel"), hands_free=True)
    assert plan.mode == "half-duplex" and plan.fallback
    assert "pip install pywebrtc-audio" in plan.describe()
    # `pilive check` says the same without loading anything.
    assert "half-duplex (no canceller: webrtc" in expected(EchoSettings(), hands_free=True)
    # Noise suppression without its library is said, and the gate still runs.
    quiet = plan_echo(EchoSettings(mode="half-duplex", noise_suppression=True), hands_free=True)
    assert quiet.processor is None and "no noise suppression" in quiet.why


@dataclass
class Speaker:
    """What PlaybackReference reads of a Playback: its ring and the device format."""

    ring: RingBuffer | None
    device_format: tuple[int, int] | None


def test_the_reference_for_a_microphone_frame_is_what_played_lead_ms_before_it() -> None:
    """Blocks handed to a 16 kHz device at known DAC times; a microphone frame captured at t
    gets the samples that reached the device at t - lead_ms, sample-exact."""
    ring = RingBuffer(1 << 16, tap_bytes=1 << 15)
    played = (np.arange(16000) % 3000).astype("<i2")
    ring.write(played.tobytes())
    out = bytearray(FRAME_SAMPLES * 2)
    start_s = 50.0
    for block in range(20):  # 200 ms handed over, block k at 50.0 + k * 10 ms
        ring.read_into(out, start_s + block * 0.01)
    reference = PlaybackReference(Speaker(ring, (RATE_HZ, 1)), lead_ms=20.0)  # type: ignore[arg-type]
    mic_time_s = start_s + 0.100  # captured 100 ms after the first block reached the device
    index = reference.index_for(mic_time_s, mic_index=0)
    frame = reference.frame(index)
    first = round((0.100 - 0.020) * RATE_HZ)
    assert np.array_equal(frame, played[first : first + FRAME_SAMPLES])
    # The next frame follows by sample count, whatever the next timestamp's jitter.
    later = reference.index_for(mic_time_s + 0.0103, mic_index=FRAME_SAMPLES)
    assert later == (index or 0) + FRAME_SAMPLES


def test_the_reference_stays_sample_exact_long_after_its_history_wrapped() -> None:
    """Ten seconds of blocks through a 100 ms history: the store is compacted many times over and
    each frame is still exactly what played lead_ms before it."""
    ring = RingBuffer(1 << 16, tap_bytes=1 << 15)
    reference = PlaybackReference(Speaker(ring, (RATE_HZ, 1)), lead_ms=20.0, history_ms=100)  # type: ignore[arg-type]
    played = (np.arange(10 * RATE_HZ) % 30011).astype("<i2")
    out = bytearray(FRAME_SAMPLES * 2)
    mic_index = 0
    for block in range(len(played) // FRAME_SAMPLES):
        ring.write(played[block * FRAME_SAMPLES : (block + 1) * FRAME_SAMPLES].tobytes())
        ring.read_into(out, 7.0 + block * 0.01)
        if block >= 5:  # the microphone frame captured 50 ms after this block's start
            index = reference.index_for(7.0 + (block - 5) * 0.01 + 0.05, mic_index)
            first = (block - 5) * FRAME_SAMPLES + round(0.03 * RATE_HZ)
            assert np.array_equal(reference.frame(index), played[first : first + FRAME_SAMPLES])
            mic_index += FRAME_SAMPLES
    assert reference.resyncs == 0


def test_the_reference_is_resampled_from_the_device_rate() -> None:
    """A 24 kHz device: a click handed over at DAC time T shows in the 16 kHz reference at T."""
    ring = RingBuffer(1 << 16, tap_bytes=1 << 15)
    pcm = np.zeros(24000, dtype="<i2")
    pcm[2400] = 20000  # 100 ms into the stream
    ring.write(pcm.tobytes())
    out = bytearray(240 * 2)
    for block in range(30):
        ring.read_into(out, 10.0 + block * 0.01)
    reference = PlaybackReference(Speaker(ring, (24000, 1)), lead_ms=0.0)  # type: ignore[arg-type]
    index = reference.index_for(10.095, mic_index=0)
    frame = reference.frame(index)
    assert int(np.argmax(np.abs(frame))) == round(0.005 * RATE_HZ)


def test_half_duplex_mutes_while_the_speaker_plays_and_tail_ms_after() -> None:
    """The gate: frames that may hear the speaker are silence; once the speaker has been quiet
    for tail_ms the microphone passes again."""
    ring = RingBuffer(1 << 16, tap_bytes=1 << 15)
    ring.write((np.ones(1600) * 5000).astype("<i2").tobytes())  # 100 ms of sound, then nothing
    out = bytearray(FRAME_SAMPLES * 2)
    for block in range(60):
        ring.read_into(out, 1.0 + block * 0.01)
    reference = PlaybackReference(Speaker(ring, (RATE_HZ, 1)), lead_ms=0.0)  # type: ignore[arg-type]
    tail = RATE_HZ * 200 // 1000
    during = reference.index_for(1.05, 0)
    assert reference.speaker_heard(during, tail)
    assert reference.speaker_heard(during and during + 2400, tail)  # 150 ms after: in the tail
    assert not reference.speaker_heard(during and during + 6400, tail)  # 400 ms after


async def test_the_echo_thread_returns_every_chunk_processed_in_order() -> None:
    """Chunks submitted on the loop come back on the loop, same size and order, processed off
    it; the pre-roll holds the processed chunks; closing stops delivery."""
    got: list[bytes] = []
    plan = EchoPlan("cancel", "test", open_processor("speex", cancel=False, auto_gain=False))
    echo = EchoProcessor(
        plan, None, got.append, chunk_bytes=640, preroll_chunks=3, mic_time=lambda: 0.0
    )
    await echo.start()
    chunks = [bytes([i]) * 640 for i in range(10)]
    for chunk in chunks:
        echo.submit(chunk)
    async with asyncio.timeout(10):
        while len(got) < len(chunks):
            await asyncio.sleep(0.01)
    assert [len(c) for c in got] == [640] * 10
    assert echo.frames == 20 and echo.cpu_us_per_frame > 0
    assert echo.take_preroll() == got[-3:]
    await echo.aclose()
    echo.submit(chunks[0])
    await asyncio.sleep(0.05)
    assert len(got) == 10


@pytest.mark.parametrize("name", ["webrtc", "speex"])
def test_noise_suppression_lowers_steady_noise(name: str) -> None:
    """`noise_suppression = true`: steady room noise (white, -40 dBFS) is at least 6 dB lower
    after two seconds of learning it."""
    noise = np.random.default_rng(9).standard_normal(4 * RATE_HZ) * 0.01
    processor = open_processor(name, cancel=False, noise_suppression=True)  # type: ignore[arg-type]
    near = to_int16(noise)
    silent = np.zeros(FRAME_SAMPLES, np.int16)
    out = np.concatenate(
        [
            processor.process(near[i : i + FRAME_SAMPLES].copy(), silent)
            for i in range(0, len(near) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
        ]
    ).astype(np.float64)
    tail = slice(2 * RATE_HZ, 4 * RATE_HZ)
    lowered_db = 10 * np.log10(
        np.mean(near[tail].astype(np.float64) ** 2) / np.mean(out[tail] ** 2)
    )
    assert lowered_db >= 6.0


@pytest.mark.parametrize("name", ["webrtc", "speex"])
def test_auto_gain_raises_a_quiet_talker(name: str) -> None:
    """`auto_gain = true`: a voice at -45 dBFS comes out louder once the gain has adapted (real
    speech: WebRTC's AGC2 only moves on what its voice detector takes for speech)."""
    quiet = np.concatenate([speak(AGC_SPEECH, dbfs=-45.0)] * 2)
    processor = open_processor(name, cancel=False, auto_gain=True)  # type: ignore[arg-type]
    near = to_int16(quiet)
    silent = np.zeros(FRAME_SAMPLES, np.int16)
    out = np.concatenate(
        [
            processor.process(near[i : i + FRAME_SAMPLES].copy(), silent)
            for i in range(0, len(near) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
        ]
    ).astype(np.float64)
    near = near[: len(out)]
    tail = slice(len(out) // 2, len(out))
    raised_db = 10 * np.log10(np.mean(out[tail] ** 2) / np.mean(near[tail].astype(np.float64) ** 2))
    assert raised_db >= 6.0


class FailingCanceller:
    """A canceller library that breaks mid-run (as a native library can): fault injection."""

    name = "webrtc"
    description = "fails on its third frame"

    def __init__(self) -> None:
        self.frames = 0

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        self.frames += 1
        if self.frames >= 3:
            raise RuntimeError("internal error")
        return near


async def test_a_canceller_that_fails_mid_run_leaves_the_microphone_half_duplex() -> None:
    """The library raising is not the microphone going silent: every chunk still comes back,
    and from then on the plan is half-duplex, with the reason STATUS will show."""
    got: list[bytes] = []
    echo = EchoProcessor(
        EchoPlan("cancel", "test", FailingCanceller()),
        None,
        got.append,
        chunk_bytes=640,
        preroll_chunks=1,
        mic_time=lambda: 0.0,
    )
    await echo.start()
    for _ in range(4):
        echo.submit(bytes(640))
    async with asyncio.timeout(10):
        while len(got) < 4:
            await asyncio.sleep(0.01)
    await echo.aclose()
    assert echo.plan.mode == "half-duplex" and echo.plan.fallback
    assert "webrtc cannot run here: it failed: internal error" in echo.plan.describe()


class PassThrough:
    """A canceller that removes nothing, to see the warm-up gate alone."""

    name = "webrtc"
    description = "passes the microphone through"

    def __init__(self) -> None:
        self.frames = 0

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        self.frames += 1
        return near


def test_while_the_canceller_adapts_frames_that_hear_the_speaker_are_muted() -> None:
    """The canceller's first WARM_UP_FRAMES with the speaker playing are muted (it still gets
    them, to adapt); after that, and whenever the speaker is silent, its output passes."""
    ring = RingBuffer(1 << 18, tap_bytes=1 << 17)
    ring.write((np.ones(RATE_HZ * 2) * 3000).astype("<i2").tobytes())  # 2 s of speaker sound
    out = bytearray(FRAME_SAMPLES * 2)
    for block in range(220):
        ring.read_into(out, 3.0 + block * 0.01)
    canceller = PassThrough()
    echo = EchoProcessor(
        EchoPlan("cancel", "test", canceller),
        PlaybackReference(Speaker(ring, (RATE_HZ, 1)), lead_ms=0.0),  # type: ignore[arg-type]
        lambda chunk: None,
        chunk_bytes=640,
        preroll_chunks=1,
        mic_time=lambda: 0.0,
    )
    near = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    heard = [echo._process(near, 3.0 + i * 0.01).any() for i in range(150)]
    assert canceller.frames == 150
    assert not any(heard[:WARM_UP_FRAMES]) and all(heard[WARM_UP_FRAMES:])
