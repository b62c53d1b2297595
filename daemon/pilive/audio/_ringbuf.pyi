"""Lock-free single-producer single-consumer ring buffer of 24 kHz s16le PCM for playback.

The producer (the network side) calls write(), clear() and end_stream(); the consumer (the
PortAudio callback or a playback thread) calls read_into(). Properties and wait_*() may be used from
any thread. Copies of GIL_RELEASE_MIN_BYTES or more run without the GIL; smaller ones (the usual
audio chunk) keep it so a real-time callback never waits to get the GIL back.
"""

from typing import Any, Final, TypeAlias

import numpy as np
from typing_extensions import Buffer

PcmBuffer: TypeAlias = Buffer | np.ndarray[Any, Any]
"""Anything exporting the buffer protocol. numpy arrays are named too: their stubs declare
__buffer__ only for Python 3.12+, and the daemon is type-checked for 3.11."""

GIL_RELEASE_MIN_BYTES: Final[int]
"""write()/read_into() of at least this many bytes release the GIL around the copy."""
MAX_CAPACITY_BYTES: Final[int]
"""Largest capacity_bytes accepted (1 GiB)."""

class RingBuffer:
    """A fixed-capacity ring of whole 16-bit samples with barge-in fade, gain and prebuffering.

    Between clear() and the consumer's next read_into(): `available` already counts only audio
    written after the clear, while `free` still counts the dropped audio as occupying space,
    because the consumer fades out from it; the space comes back once the fade has been read
    (wait_writable() wakes then).
    """

    def __init__(
        self,
        capacity_bytes: int,
        *,
        fade_samples: int = 96,
        prebuffer_bytes: int = 0,
        tap_bytes: int = 0,
    ) -> None:
        """Allocate capacity_bytes rounded up to a power of two (1 GiB at most).

        fade_samples is the length of the fade-out after clear() (0..1,000,000; 96 is 4 ms at
        24 kHz); prebuffer_bytes (0..capacity) is how much must be buffered before playback
        (re)starts; tap_bytes (rounded up to a power of two, 0 for none) is how much of the
        device output the reference tap keeps. Raises ValueError for out-of-range values,
        TypeError for non-integers.
        """

    @property
    def capacity(self) -> int:
        """Capacity in bytes: capacity_bytes rounded up to a power of two."""

    @property
    def fade_samples(self) -> int:
        """Length of the linear fade-out after clear(), in samples."""

    @property
    def available(self) -> int:
        """Bytes waiting to play; audio dropped by a clear() no longer counts."""

    @property
    def free(self) -> int:
        """Bytes write() can accept now."""

    @property
    def bytes_written(self) -> int:
        """Total bytes accepted by write() since construction."""

    @property
    def bytes_read(self) -> int:
        """Total audio bytes read_into() has returned (fade-outs included, silence not)."""

    @property
    def underruns(self) -> int:
        """Reads that came up short while audio was flowing (a gap the listener heard)."""

    @property
    def overruns(self) -> int:
        """Writes that did not fit completely (the caller kept the rest)."""

    @property
    def clears(self) -> int:
        """Number of clear() calls."""

    @property
    def flowing(self) -> bool:
        """True while audio is flowing; False at start and after a clear, end or underrun."""

    @property
    def gain(self) -> float:
        """Playback gain applied on read, saturating at int16 limits."""

    @gain.setter
    def gain(self, value: float) -> None:
        """Set the gain, 0.0..4.0 (ValueError outside); safe from any thread at any time."""

    @property
    def prebuffer_bytes(self) -> int:
        """Bytes that must be buffered before playback starts or restarts."""

    @prebuffer_bytes.setter
    def prebuffer_bytes(self, value: int) -> None:
        """Set the prebuffer, 0..capacity (ValueError outside); safe from any thread."""

    def write(self, data: PcmBuffer, /) -> int:
        """Producer: copy as much of data (C-contiguous s16le bytes or int16 array) as fits.

        Returns the bytes accepted (even); the rest stays the caller's and overruns counts one.
        Never blocks. ValueError for an odd byte count, BufferError for a non-contiguous buffer,
        TypeError for a non-buffer or a non-PCM item format (float arrays, for instance).
        """

    def read_into(self, out: PcmBuffer, dac_time_s: float | None = None, /) -> int:
        """Consumer: fill the writable, C-contiguous, even-length buffer out completely.

        Where audio runs out the rest is silence. Returns the number of real audio bytes.
        Applies gain, the barge-in fade and the prebuffer; counts an underrun only when audio
        was flowing and ran dry (not before the first audio, not after an end_stream() tail
        drained, not after clear()). The filled block goes to the tap (when kept) and counts in
        tap_position; dac_time_s, when given, stamps the block's first byte with the time it
        reaches the device (PortAudio's output_buffer_dac_time).
        """

    def clear(self) -> None:
        """Producer: drop everything written so far (barge-in).

        The audio that was playing fades out over fade_samples samples taken from the read
        position; audio written after the call plays normally (after the prebuffer).
        """

    def end_stream(self) -> None:
        """Producer: no more audio for now; the tail plays even if below the prebuffer and
        running dry afterwards is not an underrun."""

    def wait_readable(self, nbytes: int, timeout_s: float, /) -> bool:
        """Sleep without the GIL until nbytes are available, or an ended stream's shorter tail
        is waiting; False when timeout_s (>= 0, may be inf) passes first."""

    def wait_writable(self, nbytes: int, timeout_s: float, /) -> bool:
        """Sleep without the GIL until nbytes are free; False when timeout_s passes first."""

    @property
    def tap_capacity(self) -> int:
        """Bytes of device output the tap keeps (tap_bytes rounded up; 0: no tap)."""

    @property
    def tap_position(self) -> int:
        """Bytes read_into() has handed to the device in total, silence included."""

    def tap_read(self, out: PcmBuffer, position: int, /) -> int:
        """Any thread: copy device output from absolute tap position on into out; returns the
        bytes copied (fewer than len(out), or 0, where the device has not got that far).
        LookupError when part of it is no longer held; ValueError without a tap."""

    def tap_stamp(self) -> tuple[int, float] | None:
        """Any thread: (tap position, dac_time_s) of the newest stamped block, or None."""
