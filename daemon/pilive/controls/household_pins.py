"""The household controls' pins: the mute button or switch, the volume buttons and the privacy
LED (gpiozero).

They share the talk button's pin factory, wiring (pull-up) and debounce. Edges become small
events handed to the loop by the caller's `hand_over` (call_soon_threadsafe), exactly as the
talk button's do. A mute switch's position at start is reported at once, so a device switched to
mute before it booted never opens its microphone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pilive.controls.events import ControlEvent, MutePressed, MuteSwitched, VolumeStepped

if TYPE_CHECKING:
    from gpiozero.pins import Factory


class HouseholdPins:
    """Builds the configured household inputs and the privacy LED; `close()` releases them."""

    def __init__(
        self,
        factory: Factory,
        *,
        hand_over: Callable[[ControlEvent], None],
        pull_up: bool,
        bounce_time_s: float | None,
        mute_pin: int | str | None,
        mute_kind: Literal["button", "switch"],
        privacy_led_pin: int | str | None,
        active_high: bool,
        volume_up_pin: int | str | None = None,
        volume_down_pin: int | str | None = None,
    ) -> None:
        from gpiozero import LED, Button  # noqa: PLC0415

        self._hand_over = hand_over
        self._devices: list[Any] = []
        self.privacy_led: Any = None
        try:
            if mute_pin is not None:
                mute = Button(
                    mute_pin, pull_up=pull_up, bounce_time=bounce_time_s, pin_factory=factory
                )
                self._devices.append(mute)
                if mute_kind == "switch":
                    mute.when_pressed = lambda: self._switched(True)
                    mute.when_released = lambda: self._switched(False)
                    self._switched(bool(mute.is_pressed))
                else:
                    mute.when_pressed = lambda: hand_over(MutePressed(time.monotonic()))
            for pin, step in ((volume_up_pin, 1), (volume_down_pin, -1)):
                if pin is None:
                    continue
                volume = Button(
                    pin, pull_up=pull_up, bounce_time=bounce_time_s, pin_factory=factory
                )
                self._devices.append(volume)
                volume.when_pressed = self._volume_handler(step)
            if privacy_led_pin is not None:
                self.privacy_led = LED(
                    privacy_led_pin, active_high=active_high, pin_factory=factory
                )
                self._devices.append(self.privacy_led)
        except BaseException:
            self.close()
            raise

    def _volume_handler(self, step: int) -> Callable[[], None]:
        return lambda: self._hand_over(VolumeStepped(time.monotonic(), step))

    def _switched(self, engaged: bool) -> None:
        self._hand_over(MuteSwitched(time.monotonic(), engaged))

    def show_muted(self, muted: bool) -> None:
        if self.privacy_led is not None:
            self.privacy_led.value = muted

    def close(self) -> None:
        for device in self._devices:
            device.close()
        self._devices.clear()
        self.privacy_led = None
