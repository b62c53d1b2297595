"""A local Live API server for tests, demos and hardware bring-up.

Names are imported lazily so `pilive emulator --help` (which imports the cli submodule, and so
this package) does not pull in websockets and numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilive.emulator.faults import (
        Abort,
        Close,
        DelaySetupComplete,
        EmptyReply,
        FaultScript,
        GoAway,
        Phase,
        SendInterrupted,
        SendMalformed,
        Stall,
        WithholdSetupComplete,
    )
    from pilive.emulator.options import EmulatorOptions, ToolTrigger
    from pilive.emulator.recording import Recording
    from pilive.emulator.server import Emulator

_EXPORTS = {
    "Emulator": "server",
    "EmulatorOptions": "options",
    "ToolTrigger": "options",
    "Recording": "recording",
    "FaultScript": "faults",
    "Phase": "faults",
    "GoAway": "faults",
    "Close": "faults",
    "Abort": "faults",
    "Stall": "faults",
    "DelaySetupComplete": "faults",
    "WithholdSetupComplete": "faults",
    "SendMalformed": "faults",
    "SendInterrupted": "faults",
    "EmptyReply": "faults",
}

__all__ = [
    "Abort",
    "Close",
    "DelaySetupComplete",
    "EmptyReply",
    "Emulator",
    "EmulatorOptions",
    "FaultScript",
    "GoAway",
    "Phase",
    "Recording",
    "SendInterrupted",
    "SendMalformed",
    "Stall",
    "ToolTrigger",
    "WithholdSetupComplete",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pilive.emulator' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pilive.emulator.{module}"), name)
