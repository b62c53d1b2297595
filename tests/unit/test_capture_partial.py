"""Capture.take_partial: what arrived after the last whole chunk, taken at a release.

A 44.1 kHz microphone is resampled to 16 kHz in bursts (the resampler gives out hundreds of
samples at a time), so the audio converted but not yet a whole 20 ms chunk is rarely empty; a
release must send it at once rather than wait for the chunk to fill.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from pilive.audio import converter
from pilive.audio.backends.simulated import FileBackend
from pilive.audio.capture import Capture
from tests.support.pulse_rig import write_wav

RATE_HZ = 44100
BLOCK_FRAMES = RATE_HZ * 20 // 1000  # what Capture asks the device for: one chunk's time


def resampled(source: np.ndarray) -> bytes:
    """The same conversion, fed the same device blocks, in one go: the reference stream."""
    to_16k = converter(RATE_HZ, 1, 16000, 1)
    assert to_16k is not None
    padded = np.concatenate([source, np.zeros(-len(source) % BLOCK_FRAMES, np.int16)])
    blocks = padded.reshape(-1, BLOCK_FRAMES)
    return b"".join(to_16k.convert(block.tobytes()) for block in blocks)


async def test_partials_taken_between_chunks_lose_and_repeat_nothing(tmp_path: Path) -> None:
    """Partials taken right after twelve different chunks, together with the chunks in the
    order the loop saw them, are exactly the resampled microphone stream: no sample is lost or
    repeated. The partials are shorter than a chunk, most are not empty, and each is kept in the
    pre-roll too (a press right after a release still hears it)."""
    rng = np.random.default_rng(7)
    source = rng.integers(-20000, 20000, RATE_HZ * 2).astype(np.int16)
    wav = write_wav(tmp_path / "mic.wav", source, RATE_HZ)
    stream: list[bytes] = []
    partials: list[bytes] = []
    capture: Capture

    def take() -> None:
        partial = capture.take_partial()
        partials.append(partial)
        stream.append(partial)

    def on_chunk(chunk: bytes) -> None:
        stream.append(chunk)
        if 5 <= capture.chunks < 5 + 2 * 12 and capture.chunks % 2 == 1:
            asyncio.get_running_loop().call_soon(take)  # after this block's whole chunks

    capture = Capture(FileBackend(input_path=wav), on_chunk, preroll_ms=2000)
    await capture.start()
    async with asyncio.timeout(10):
        while not capture.ended:
            await asyncio.sleep(0.02)
    await capture.aclose()

    reference = np.frombuffer(resampled(source), dtype="<i2")
    heard = b"".join(stream)
    samples = np.frombuffer(heard, dtype="<i2").astype(np.int32)
    assert len(partials) == 12
    # soxr dithers its 16-bit output (random last bits), so two runs agree to 2 LSB; one
    # sample lost or repeated would shift the rest of this noise by whole samples.
    assert len(reference) - len(samples) < capture.chunk_bytes // 2  # the stream's last partial
    assert np.abs(samples - reference[: len(samples)]).max() <= 2
    assert all(len(p) < capture.chunk_bytes and len(p) % 2 == 0 for p in partials)
    assert sum(1 for p in partials if p) >= 6
    kept = capture.take_preroll()
    assert b"".join(kept) == heard[-sum(len(c) for c in kept) :]


async def test_nothing_to_take_between_whole_chunks(tmp_path: Path) -> None:
    """At 16 kHz mono every device block is one whole chunk: a partial is always empty, and
    taking it leaves the chunks as they were."""
    rng = np.random.default_rng(8)
    source = rng.integers(-20000, 20000, 16000).astype(np.int16)
    wav = write_wav(tmp_path / "mic.wav", source, 16000)
    chunks: list[bytes] = []
    taken: list[bytes] = []
    capture: Capture

    def on_chunk(chunk: bytes) -> None:
        chunks.append(chunk)
        taken.append(capture.take_partial())

    capture = Capture(FileBackend(input_path=wav), on_chunk)
    await capture.start()
    async with asyncio.timeout(10):
        while not capture.ended:
            await asyncio.sleep(0.02)
    await capture.aclose()
    assert taken and set(taken) == {b""}
    assert b"".join(chunks) == source.tobytes()
