"""When hands-free input says `realtimeInput.audioStreamEnd`: the microphone has stopped.

The Live API guide asks a client whose audio stream pauses for more than a second (microphone
muted, device lost, capture stalled) to send audioStreamEnd, so that the server flushes the audio
it holds instead of waiting for more: words cut off by the stop are answered, and its voice
detection starts afresh when audio comes again (sending audio reopens the stream). Only with the
server's automatic activity detection on (hands-free); push-to-talk ends turns with activityEnd.

After a reconnect the session sends the held audio and the hands-free tail on the new connection;
if the microphone is still stopped then, that stream needs its own end.

Pure: `now` is an argument, in seconds on the caller's monotonic clock.
"""

from __future__ import annotations

STREAM_GAP_S = 1.0
"""A pause in the audio longer than this ends the stream (the guide's "more than a second")."""


class AudioStreamWatch:
    """Audio sent in, `tick(now)` at `next_deadline`: True when audioStreamEnd is due now.

    At most one audioStreamEnd per stop of the microphone, and one per new connection while it
    stays stopped; none before any audio was sent at all.
    """

    def __init__(self, gap_s: float = STREAM_GAP_S) -> None:
        if not gap_s > 0:
            raise ValueError(f"gap_s must be > 0, got {gap_s!r}")
        self.gap_s = gap_s
        self._last_audio_s: float | None = None  # the stream is open: audio went out then
        self._any_audio = False
        self.stream_ends = 0  # audioStreamEnd decided, for the journal and tests

    @property
    def open(self) -> bool:
        """Audio is flowing (or paused for at most `gap_s`)."""
        return self._last_audio_s is not None

    @property
    def next_deadline(self) -> float | None:
        """When `tick` has something to decide; None while the stream is already ended."""
        if self._last_audio_s is None:
            return None
        return self._last_audio_s + self.gap_s

    def audio_sent(self, now: float) -> None:
        """A chunk of microphone audio went to the link: the stream is (again) open."""
        self._last_audio_s = now
        self._any_audio = True

    def tick(self, now: float, *, connected: bool) -> bool:
        """True when audioStreamEnd is to be sent now: no audio for `gap_s` or longer and a
        connection to send it on. Without one, the stream still counts as ended, and
        `connection_ready` ends it on the next connection."""
        if self._last_audio_s is None or now - self._last_audio_s < self.gap_s:
            return False
        self._last_audio_s = None
        return self._ended() if connected else False

    def connection_ready(self) -> bool:
        """A connection has just completed its setup: True when the stream is to be ended on it
        at once (the microphone is stopped, and the audio replayed there needs an end)."""
        if self._last_audio_s is not None or not self._any_audio:
            return False
        return self._ended()

    def _ended(self) -> bool:
        self.stream_ends += 1
        return True
