"""Built-in tools: device status, set volume, new conversation.

Each declares the behaviour that suits it: device_status is blocking (its result is the answer),
set_volume is non-blocking and SILENT (the model says "louder" while it runs, the change is heard
and the result adds nothing; a failure is still spoken), new_conversation is blocking (the
conversation ends with it; there is nothing to talk over).

Everything that touches the rest of the daemon comes in as a callable, and file roots are
parameters, so tests use real files in a temporary directory and the tools never import audio or
session code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilive.tools.base import BLOCKING, Behavior, ToolResponse
from pilive.tools.schema import check_schema

log = logging.getLogger(__name__)

_NO_ARGS = check_schema({"type": "object", "properties": {}})
_NON_BLOCKING_SILENT = Behavior(blocking=False, scheduling="SILENT")


def read_uptime_s(proc_root: Path) -> float | None:
    """Seconds since boot, the first field of /proc/uptime; None when unreadable."""
    try:
        return float((proc_root / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_cpu_temperature_c(sys_root: Path) -> float | None:
    """CPU temperature in °C from /sys/class/thermal (millidegrees in `temp`).

    Prefers a zone whose `type` mentions the CPU ("cpu-thermal" on a Pi), else the first zone that
    reads; None when there is none (containers, most VMs).
    """
    zones = sorted((sys_root / "class" / "thermal").glob("thermal_zone*"))
    ranked = sorted(zones, key=lambda z: "cpu" not in _read(z / "type").lower())
    for zone in ranked:
        try:
            return round(int(_read(zone / "temp")) / 1000, 1)
        except ValueError:
            continue
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def read_wifi(proc_root: Path) -> dict[str, Any] | None:
    """The first wireless interface's link from /proc/net/wireless, or None.

    The file has two header lines, then one line per interface:
    ` wlan0: 0000   70.  -40.  -256        0      0      0      0     12        0`
    i.e. name, status, link quality, signal level (dBm), noise (dBm), then counters. A trailing
    "." marks a value the driver updated. Noise -256 means "not reported" and is left out.
    """
    try:
        lines = (proc_root / "net" / "wireless").read_text().splitlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < 4:
            continue
        try:
            quality, level, noise = (float(f.rstrip(".")) for f in fields[1:4])
        except ValueError:
            continue
        wifi: dict[str, Any] = {
            "interface": name.strip(),
            "link_quality": int(quality),
            "signal_dbm": int(level),
        }
        if noise > -256:
            wifi["noise_dbm"] = int(noise)
        return wifi
    return None


@dataclass
class DeviceStatusTool:
    """device_status: uptime, CPU temperature, Wi-Fi signal and volume, whichever are readable."""

    get_volume_percent: Callable[[], int] | None = None
    proc_root: Path = Path("/proc")
    sys_root: Path = Path("/sys")
    name: str = "device_status"
    description: str = (
        "Report the speaker's own status: uptime, CPU temperature, Wi-Fi signal strength and the "
        "current volume. Use it when asked how the device is doing."
    )
    parameters: Mapping[str, Any] = field(default_factory=lambda: _NO_ARGS)
    behavior: Behavior = BLOCKING

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        status: dict[str, Any] = {}
        uptime_s = read_uptime_s(self.proc_root)
        if uptime_s is not None:
            status["uptime_s"] = round(uptime_s)
        temperature_c = read_cpu_temperature_c(self.sys_root)
        if temperature_c is not None:
            status["cpu_temperature_c"] = temperature_c
        wifi = read_wifi(self.proc_root)
        if wifi is not None:
            status["wifi"] = wifi
        if self.get_volume_percent is not None:
            status["volume_percent"] = self.get_volume_percent()
        return {"result": status}


@dataclass
class SetVolumeTool:
    """set_volume: 0-100 %, through the playback side's setter."""

    set_volume_percent: Callable[[int], None]
    name: str = "set_volume"
    description: str = (
        "Set the speaker volume in percent (0 is silent, 100 is loudest). Use it when asked to "
        "speak louder or quieter."
    )
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: check_schema(
            {
                "type": "object",
                "properties": {
                    "percent": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 100,
                        "description": "The new volume, 0 to 100.",
                    }
                },
                "required": ["percent"],
                "additionalProperties": False,
            }
        )
    )
    behavior: Behavior = _NON_BLOCKING_SILENT

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        percent = int(args["percent"])
        self.set_volume_percent(percent)
        log.info("volume set to %d%% by the model", percent)
        return {"result": {"volume_percent": percent}}


@dataclass
class NewConversationTool:
    """new_conversation: forget this conversation after the current turn, start afresh."""

    start_new_conversation: Callable[[], None]
    name: str = "new_conversation"
    description: str = (
        "Forget this conversation and start a new one, when the user asks to start over or to "
        "change the subject completely."
    )
    parameters: Mapping[str, Any] = field(default_factory=lambda: _NO_ARGS)
    behavior: Behavior = BLOCKING

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        self.start_new_conversation()
        return {"result": "a new conversation starts after this answer"}


BUILTIN_TOOL_NAMES: tuple[str, ...] = ("device_status", "set_volume", "new_conversation")
