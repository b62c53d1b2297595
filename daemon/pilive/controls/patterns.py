"""LED patterns: one small, validated description per appliance state.

Times are seconds, as in gpiozero's `blink(on_time, off_time, fade_in_time, fade_out_time)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from pilive.controls.events import ApplianceState

PatternKind = Literal["solid", "off", "blink", "pulse"]
LedKind = Literal["none", "led", "pwmled", "rgbled"]
Colour = tuple[float, float, float]

PATTERN_KINDS: tuple[str, ...] = get_args(PatternKind)
LED_KINDS: tuple[str, ...] = get_args(LedKind)


@dataclass(frozen=True, slots=True)
class LedPattern:
    """How the LED looks in one state.

    kind: solid (steady on), off, blink (on_time_s on, off_time_s off; fades need a PWM LED), or
    pulse (fade in over fade_in_time_s, out over fade_out_time_s). A plain on/off LED cannot fade,
    so it shows a pulse as a blink of the same rhythm.
    colour: red, green, blue in 0..1, used by an RGB LED. brightness (0..1) scales a solid PWM LED
    and every RGB colour; gpiozero's blink and pulse on a single PWM LED always reach full on.
    """

    kind: PatternKind = "solid"
    on_time_s: float = 0.5
    off_time_s: float = 0.5
    fade_in_time_s: float = 0.0
    fade_out_time_s: float = 0.0
    colour: Colour = (1.0, 1.0, 1.0)
    brightness: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in PATTERN_KINDS:
            raise ValueError(f"LED pattern kind must be one of {PATTERN_KINDS}, got {self.kind!r}")
        for name in ("on_time_s", "off_time_s", "fade_in_time_s", "fade_out_time_s"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"LED pattern {name} must be a number >= 0, got {value!r}")
        if self.kind == "blink" and (self.on_time_s <= 0 or self.off_time_s <= 0):
            raise ValueError(
                f"LED pattern 'blink' needs on_time_s > 0 and off_time_s > 0, "
                f"got {self.on_time_s!r} and {self.off_time_s!r}"
            )
        if self.kind == "pulse" and (self.fade_in_time_s <= 0 or self.fade_out_time_s <= 0):
            raise ValueError(
                f"LED pattern 'pulse' needs fade_in_time_s > 0 and fade_out_time_s > 0, "
                f"got {self.fade_in_time_s!r} and {self.fade_out_time_s!r}"
            )
        if (
            not isinstance(self.colour, tuple)
            or len(self.colour) != 3
            or not all(_is_number(c) and 0 <= c <= 1 for c in self.colour)
        ):
            raise ValueError(
                f"LED pattern colour must be three numbers (red, green, blue) in 0..1, "
                f"got {self.colour!r}"
            )
        if not _is_number(self.brightness) or not 0 <= self.brightness <= 1:
            raise ValueError(f"LED pattern brightness must be in 0..1, got {self.brightness!r}")

    @property
    def scaled_colour(self) -> Colour:
        """The colour at this pattern's brightness, what an RGB LED is driven with."""
        r, g, b = self.colour
        return (r * self.brightness, g * self.brightness, b * self.brightness)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# A state given no pattern is dark. The defaults a user sees are the configuration's
# (pilive.config.model.LedPatterns, documented in pilive.toml and the README): one home for them.
_DARK = LedPattern("off")


@dataclass(frozen=True, slots=True)
class LedConfig:
    """Which LED is fitted and how each state looks.

    pins: one pin for led/pwmled, three (red, green, blue) for rgbled, none for none. Pins are
    gpiozero pin names (17, "GPIO17", "BOARD11"). active_high False for common-anode RGB LEDs or an
    LED wired to 3V3. States missing from `patterns` are dark.
    """

    kind: LedKind = "none"
    pins: tuple[int | str, ...] = ()
    active_high: bool = True
    patterns: Mapping[ApplianceState, LedPattern] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in LED_KINDS:
            raise ValueError(f"LED kind must be one of {LED_KINDS}, got {self.kind!r}")
        wanted = {"none": 0, "led": 1, "pwmled": 1, "rgbled": 3}[self.kind]
        if len(self.pins) != wanted:
            raise ValueError(
                f"LED kind {self.kind!r} needs {wanted} pin(s), got {len(self.pins)}: {self.pins!r}"
            )
        for state, pattern in self.patterns.items():
            if not isinstance(state, ApplianceState):
                raise ValueError(
                    f"LED pattern key must be one of {[s.value for s in ApplianceState]}, "
                    f"got {state!r}"
                )
            if not isinstance(pattern, LedPattern):
                raise ValueError(f"LED pattern for {state.value!r} is not a LedPattern")

    def pattern_for(self, state: ApplianceState) -> LedPattern:
        """The configured pattern for `state`; dark when it has none."""
        return self.patterns.get(state) or _DARK
