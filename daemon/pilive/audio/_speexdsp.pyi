"""speexdsp's acoustic echo canceller (MDF) and preprocessor, on 16-bit mono frames.

Built from Debian's libspeexdsp-dev when it is installed (an optional extension); the GIL is
released while a frame is processed.
"""

from pilive.audio._ringbuf import PcmBuffer

class EchoCanceller:
    """One echo filter plus, when asked, the preprocessor (residual echo, noise, gain).

    With `cancel=False` there is no echo filter: the preprocessor alone (noise suppression and
    automatic gain). Not for two threads at once (RuntimeError).
    """

    def __init__(
        self,
        frame_samples: int,
        filter_samples: int,
        rate_hz: int,
        *,
        cancel: bool = True,
        residual_echo: bool = True,
        denoise: bool = False,
        agc: bool = False,
    ) -> None: ...
    @property
    def frame_samples(self) -> int: ...
    @property
    def filter_samples(self) -> int: ...
    @property
    def rate_hz(self) -> int: ...
    def process(self, near: PcmBuffer, far: PcmBuffer, out: PcmBuffer, /) -> None:
        """One frame: near (the microphone), far (what the speaker played then), the result
        written to out, a buffer of its own. Each is frame_samples 16-bit samples."""

    def reset(self) -> None:
        """Forget the echo path: the filter adapts again from nothing."""
