"""The emulator's hands-free voice detection: the shared energy detector (pilive.audio.vad) with
the server's sensitivity settings mapped onto its threshold."""

from __future__ import annotations

from pilive.audio.vad import FRAME_MS, EnergyVad, VadEvent

__all__ = ["FRAME_MS", "SENSITIVITY_OFFSET_DB", "EnergyVad", "VadEvent"]

# startOfSpeechSensitivity moves the threshold: HIGH hears quieter speech.
SENSITIVITY_OFFSET_DB = {
    "START_SENSITIVITY_HIGH": -6.0,
    "START_SENSITIVITY_LOW": 6.0,
}
