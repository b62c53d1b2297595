"""Every benchmark in one run, one table, one JSON file.

    python -m tests.bench [--quick] [--json FILE] [--only NAME,...] [--verbose]

Each bench module's `main()` runs in this process, one after another (the CPU-time benches
first, before anything has warmed up other threads). Its own printed table is kept (shown with
`--verbose`, always saved in the JSON); the harness reads the figures it returns and prints one
row per measure: the pilive figure, the alternative measured in the same run beside it, the goal
from the issue, and whether it was met. A missed goal says MISSED; a bench that fails says ERROR
and the others still run. Exit status: 0 when every bench ran, 1 when one failed, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import importlib
import io
import json
import math
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Figures = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One line of the table: a pilive figure beside its same-run alternative, against a goal."""

    measure: str
    value: str
    beside: str = ""
    goal: str = ""
    met: bool | None = None
    """None: the issue sets no goal for this measure (it is shown for comparison)."""

    @property
    def verdict(self) -> str:
        return {None: "-", True: "met", False: "MISSED"}[self.met]


@dataclass
class BenchResult:
    name: str
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    output: str = ""
    skipped: str = ""
    error: str = ""


@dataclass(frozen=True)
class Bench:
    """How the harness runs one bench module and reads what its `main()` returned."""

    name: str
    module: str
    run: Callable[[ModuleType, bool], Figures]
    """(module, quick) -> the figures main() returned."""
    rows: Callable[[Figures], list[Row]]
    needs: tuple[str, ...] = ()
    """Programs that must be on PATH (else the bench is skipped, saying which)."""


# --- formatting -----------------------------------------------------------------------------


def num(value: object, digits: int = 1) -> str:
    """A float for the table; NaN (no samples) as "n/a"."""
    if not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def dist(
    stats: Mapping[str, Any], unit: str, lo: str = "median", hi: str = "p99", digits: int = 1
) -> str:
    """ "p50 1.2 / p99 3.4 ms (n=200)" from a stats dict with median/p99/n (or given keys)."""
    n = stats.get("n")
    count = f" (n={n})" if n is not None else ""
    lo_name = "p50" if lo in ("median", "p50") else lo
    low, high = num(stats.get(lo), digits), num(stats.get(hi), digits)
    return f"{lo_name} {low} / {hi} {high} {unit}{count}"


def at_most(value: object, limit: float) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and value <= limit


# --- row builders, one per bench --------------------------------------------------------------


def wire_rows(f: Figures) -> list[Row]:
    rows = []
    for side, what in (("build", "build 20 ms mic message"), ("parse", "parse 40 ms answer")):
        vs_floor = f[f"{side}_pilive_vs_floor"]
        sdk_vs = f[f"{side}_sdk_vs_pilive"]
        rows.append(
            Row(
                f"wire CPU: {what}",
                f"{num(f[f'{side}_pilive_us'], 2)} µs = {vs_floor:.2f}x floor",
                f"floor {num(f[f'{side}_floor_us'], 2)} µs; SDK {num(f[f'{side}_sdk_us'], 2)} µs"
                f" = {sdk_vs:.1f}x pilive",
                "<= 1.3x floor, SDK >= 3.5x",
                vs_floor <= 1.3 and sdk_vs >= 3.5,
            )
        )
    return rows


def ringbuf_rows(f: Figures) -> list[Row]:
    c, c_gain = f["C RingBuffer, gain 1.0"], f["C RingBuffer, gain 0.8"]
    py, q = f["Python bytearray ring (model)"], f["queue.Queue of bytes"]
    n = f.get("samples")
    return [
        Row(
            "ring buffer write+read 40 ms (C, gain 1)",
            dist({"median": c["median_us"], "p99": c["p99_us"], "n": n}, "µs", digits=2),
            f"gain 0.8 p50 {num(c_gain['median_us'], 2)}; Python ring p50"
            f" {num(py['median_us'], 2)}; queue p50 {num(q['median_us'], 2)} µs",
        )
    ]


def audio_rows(f: Figures) -> list[Row]:
    n = f.get("samples", {})
    mic16 = {**f["mic_to_loop_ms_16k"], "n": n.get("mic_to_loop_ms_16k")}
    mic48 = f["mic_to_loop_ms_48k_resampled"]
    hq = f["mic_to_loop_ms_48k_soxr_hq"]
    first60 = {**f["first_audio_ms_prebuffer_60"], "n": n.get("first_audio_ms_prebuffer_60")}
    first0 = f["first_audio_ms_prebuffer_0"]
    stale24 = {**f["barge_in_stale_ms_24k"], "n": n.get("barge_in_stale_ms_24k")}
    stale48 = f["barge_in_stale_ms_48k"]
    busy, idle = f["underruns_busy"], f["underruns_idle"]
    return [
        Row(
            "mic sample -> chunk on loop, 16 kHz (rig)",
            dist(mic16, "ms", "p50"),
            f"block age p99 {num(mic16['device_p99'])}, hand-off {num(mic16['hand_off_p99'])};"
            f" rig settled {num(mic16['settled_after_s'])} s after start",
            "p99 <= 25 ms",
            at_most(mic16["p99"], 25.0),
        ),
        Row(
            "mic sample -> chunk on loop, 48 kHz stereo",
            f"p50 {num(mic48['p50'])} / p99 {num(mic48['p99'])} ms (steady decimator)",
            f"soxr HQ, as before: p50 {num(hq['p50'])} / p99 {num(hq['p99'])} ms (held p99"
            f" {num(hq['held_p99'])} vs {num(mic48['held_p99'])})",
            "p99 <= 25 ms",
            at_most(mic48["p99"], 25.0),
        ),
        Row(
            "first answer byte -> device, prebuffer 60 ms",
            dist(first60, "ms", "p50"),
            f"prebuffer 0: p50 {num(first0['p50'])} / p99 {num(first0['p99'])} ms",
        ),
        Row(
            "barge-in stale audio, 24 kHz device (rig)",
            dist(stale24, "ms", "median", "max"),
            f"48 kHz device: median {num(stale48['median'])} / max {num(stale48['max'])} ms",
            "<= 30 ms (max)",
            at_most(stale24["max"], 30),
        ),
        Row(
            f"ring underruns, {num(busy['seconds'], 0)} s answers, other core busy",
            f"{busy['underruns']} (device underflows {busy['device_underflows']},"
            f" longest callback gap {busy['max_callback_gap_ms']} ms)",
            f"idle {num(idle['seconds'], 0)} s: {idle['underruns']} (underflows"
            f" {idle['device_underflows']}, gap {idle['max_callback_gap_ms']} ms)",
            "0",
            busy["underruns"] == 0 and idle["underruns"] == 0,
        ),
    ]


def camera_rows(f: Figures) -> list[Row]:
    return [
        Row(
            "camera: 768 frame -> JPEG q80, CPU, Pillow",
            f"{num(f.get('pillow_768_cpu_ms'), 2)} ms ({num(f.get('pillow_768_bytes'), 0)} B)",
            f"simplejpeg (numpy loaded anyway): {num(f.get('simplejpeg_768_cpu_ms'), 2)} ms"
            f" ({num(f.get('simplejpeg_768_bytes'), 0)} B)",
        ),
        Row(
            "camera: 1280x960 -> 768 JPEG, CPU, Pillow",
            f"{num(f.get('pillow_1280x960_cpu_ms'), 2)} ms",
            "numpy area + simplejpeg (before):"
            f" {num(f.get('numpy_area_simplejpeg_1280x960_cpu_ms'), 2)} ms",
        ),
        Row(
            "camera: RSS after 30 frames 768, Pillow",
            f"{num(f.get('rss_pillow_768_after_mb'), 1)} MB"
            f" (pilive.app alone {num(f.get('rss_app_mb'), 1)})",
            f"numpy + simplejpeg: {num(f.get('rss_simplejpeg_768_after_mb'), 1)} MB",
        ),
        Row(
            "camera: CPU share streaming at 1 fps, Pillow",
            f"{num(f['cpu_share_1fps_pillow_pct'], 2)} %"
            f" ({num(f['frames_sent_1fps_pillow'], 0)} frames)",
            f"simplejpeg {num(f['cpu_share_1fps_simplejpeg_pct'], 2)} %; camera off"
            f" {num(f['cpu_share_camera_off_pct'], 2)} %",
        ),
        Row(
            "camera: 20 ms task p99 lateness at 1 fps",
            f"Pillow {num(f['audio_task_p99_late_1fps_pillow_ms'], 2)} ms",
            f"simplejpeg {num(f['audio_task_p99_late_1fps_simplejpeg_ms'], 2)} ms; camera off"
            f" {num(f['audio_task_p99_late_off_ms'], 2)} ms",
        ),
    ]


def handover_rows(f: Figures) -> list[Row]:
    return [
        Row(
            "goAway handover gap (talking, loopback)",
            f"median {num(f['gap_ms_median'])} / max {num(f['gap_ms_max'])} ms"
            f" (n={f['handovers']})",
            f"min {num(f['gap_ms_min'])} ms",
            "<= 250 ms (max)",
            at_most(f["gap_ms_max"], 250),
        ),
        Row(
            "goAway handover: input bytes lost",
            f"{f['input_bytes_lost']} over {f['rounds']} rounds",
            f"server-side sessions {f['sessions_on_server']} (1 = every resume continued)",
            "0",
            f["input_bytes_lost"] == 0,
        ),
    ]


# --- how each bench is called -----------------------------------------------------------------


@contextlib.contextmanager
def patched(module: ModuleType, **values: Any) -> Iterator[None]:
    """Set module-level sizes (iterations, samples) for one run and put them back after."""
    saved = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def run_wire(module: ModuleType, quick: bool) -> Figures:
    with patched(module, REPEATS=2 if quick else module.REPEATS):
        result: Figures = module.main()
    return result


def run_ringbuf(module: ModuleType, quick: bool) -> Figures:
    samples = 2_000 if quick else module.SAMPLES
    with patched(module, SAMPLES=samples, WARMUP=200 if quick else module.WARMUP):
        result = dict(module.main())
    result["samples"] = samples
    return result


def run_audio(module: ModuleType, quick: bool) -> Figures:
    """bench_audio returns percentiles without sample counts; the harness counts the lists its
    measuring functions return (in the order `run()` calls them) to give n beside each."""
    counts: dict[str, list[int]] = {}

    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            counts.setdefault(name, []).append(len(result))
            return result

        return wrapper

    names = ("mic_latency_ms", "first_audio_ms", "barge_in_stale_ms")
    wrapped = {name: counting(name, getattr(module, name)) for name in names}
    with patched(module, **wrapped):
        result = dict(module.main(10.0 if quick else 60.0))

    def first(name: str) -> int | None:
        return counts.get(name, [None])[0]

    result["samples"] = {
        "mic_to_loop_ms_16k": first("mic_latency_ms"),
        "first_audio_ms_prebuffer_60": first("first_audio_ms"),
        "barge_in_stale_ms_24k": first("barge_in_stale_ms"),
    }
    return result


def run_camera(module: ModuleType, quick: bool) -> Figures:
    result: Figures = module.main(["3" if quick else "10"])
    return result


def run_handover(module: ModuleType, quick: bool) -> Figures:
    result: Figures = module.main(5 if quick else 20)
    return result


def run_daemon(module: ModuleType, quick: bool) -> Figures:
    result: Figures = module.main(quick=quick)
    return result


def _ms(stats: Mapping[str, float], key: str = "p99") -> str:
    return f"{stats['median']:.1f} / {stats[key]:.1f} ms (n={stats['n']})"


def memory_row(name: str, run: Mapping[str, Any], arm64: Mapping[str, Any]) -> Row:
    """Steady RSS beside the import floor of what that daemon imported, and both under qemu."""
    emulated = arm64.get(name)
    if emulated is None:
        beside = f"arm64: {arm64.get('skipped', 'not measured')}"
    else:
        beside = (
            f"arm64 under qemu-user (qemu's own RSS): median {emulated['rss_mb_median']:.1f},"
            f" floor {emulated['import_floor_mb']:.1f} MB"
        )
    return Row(
        "daemon RSS, " + ("duplex audio + camera 1 fps" if name == "daemon_duplex" else "idle"),
        f"median {run['rss_mb_median']:.1f} / max {run['rss_mb_max']:.1f} MB; import floor"
        f" {run['import_floor_mb']:.1f} (+{run['above_floor_mb']:.1f})"
        + ("" if run.get("numpy_imported") else "; no numpy"),
        beside,
        "<= 45 MB, <= 8 MB above floor",
        at_most(run["rss_mb_max"], 45.0) and at_most(run["above_floor_mb"], 8.0),
    )


def daemon_rows(f: Figures) -> list[Row]:
    duplex, idle_run = f["daemon_duplex"], f["daemon_idle"]
    accepted = f["accepted_press_to_activity_start_ms"]
    released = f["release_to_activity_end_ms"]
    return [
        Row(
            "accepted press -> activityStart on wire",
            "p50/p99 " + _ms(accepted),
            f"plain websockets client, same loop {_ms(f['floor_activity_ms'])}; read by the"
            f" in-process emulator {_ms(f['accepted_press_to_activity_start_read_ms'])}, its"
            f" model {_ms(f['accepted_press_to_activity_start_handled_ms'])} (plain client's"
            f" {_ms(f['floor_activity_read_ms'])}, {_ms(f['floor_activity_handled_ms'])})",
            "p99 <= 5 ms",
            at_most(accepted["p99"], 5.0),
        ),
        Row(
            "press -> activityStart on wire",
            "p50/p99 " + _ms(f["press_to_activity_start_ms"]),
            f"by design: a turn starts after min_press_ms = {f['min_press_ms']:.0f} ms",
        ),
        Row(
            "release -> activityEnd on wire",
            "p50/p99 " + _ms(released),
            f"floor {_ms(f['floor_activity_ms'])}; read by the in-process emulator"
            f" {_ms(f['release_to_activity_end_read_ms'])}, its model"
            f" {_ms(f['release_to_activity_end_handled_ms'])}; the partial mic chunk with it",
            "p99 <= 5 ms",
            at_most(released["p99"], 5.0),
        ),
        Row(
            "mic chunk on loop -> on wire",
            "p50/p99 " + _ms(f["mic_chunk_to_wire_ms"]),
            f"plain websockets client, same loop {_ms(f['floor_audio_ms'])}",
        ),
        Row(
            "first answer byte (emulator) -> device",
            "p50/p99 " + _ms(f["first_answer_byte_to_device_ms"]),
            f"to Playback.write {_ms(f['first_answer_byte_to_write_ms'])};"
            f" prebuffer {f['prebuffer_ms']} ms",
        ),
        Row(
            "barge-in: answer audio after the press",
            "p50/max " + _ms(f["barge_in_stale_ms"], "max"),
            f"queued then (no flush would play it) p50"
            f" {f['barge_in_queued_at_press_ms']['median']:.0f} ms; file device",
            "<= 30 ms (max)",
            at_most(f["barge_in_stale_ms"]["max"], 30.0),
        ),
        Row(
            "daemon goAway handover gap (talking)",
            "p50/max " + _ms(f["handover_gap_ms"], "max"),
            f"input bytes lost in those turns: {f['input_bytes_lost_in_handovers']}",
            "<= 250 ms, 0 bytes lost",
            at_most(f["handover_gap_ms"]["max"], 250.0) and f["input_bytes_lost"] == 0,
        ),
        Row(
            "daemon: mic bytes lost in all turns",
            f"{f['input_bytes_lost']} of {f['mic_bytes_in_turns']} over {f['turns']} turns",
            "each chunk sent in a turn, found in the model's turn",
            "0",
            f["input_bytes_lost"] == 0,
        ),
        Row(
            "daemon CPU, duplex audio + camera 1 fps",
            f"{duplex['cpu_pct']:.2f} % of a core over {duplex['seconds']:.0f} s"
            f" (n={duplex['samples']}, {duplex['turns']} turns)",
            f"idle (connected, camera off): {idle_run['cpu_pct']:.2f} %",
            "<= 4 % of one core",
            at_most(duplex["cpu_pct"], 4.0),
        ),
        memory_row("daemon_duplex", duplex, f.get("arm64", {})),
        memory_row("daemon_idle", idle_run, f.get("arm64", {})),
        Row(
            "process start -> READY=1",
            "p50/p99 " + _ms(f["ready_ms"]),
            f"python -c pass {f['python_pass_ms']['median']:.0f} ms; import pilive.app"
            f" {f['python_import_app_ms']['median']:.0f} ms (p50, to exit)",
            "<= 800 ms",
            at_most(f["ready_ms"]["p99"], 800.0),
        ),
    ]


def run_aec(module: ModuleType, quick: bool) -> Figures:
    result: Figures = module.main(quick=quick)
    return result


def _aec(c: Mapping[str, Any] | None, key: str, unit: str = "dB") -> str:
    return "not installed" if c is None else f"{num(c[key])} {unit}"


def aec_rows(f: Figures) -> list[Row]:
    c = f["candidates"]
    webrtc, speex, livekit = c["webrtc"], c["speex"], c.get("livekit")
    room = f["room"]
    hands_free = f["hands_free"]
    barge = hands_free["barge_in"]

    def beside(key: str, unit: str = "dB") -> str:
        return (
            f"speex {_aec(speex, key, unit)}; AEC3 via livekit {_aec(livekit, key, unit)};"
            f" none {_aec(c['none'], key, unit)}"
        )

    cancel, off, half = hands_free["cancel"], hands_free["off"], hands_free["half-duplex"]
    return [
        Row(
            f"AEC: ERLE converged (RT60 {room['rt60_ms']:.0f} ms, {room['latency_ms']:.0f} ms)",
            f"webrtc AEC3 {num(f['erle_db'])} dB",
            beside("erle_db"),
            ">= 25 dB",
            at_least(f["erle_db"], 25.0),
        ),
        Row(
            "AEC: residual echo, first second (20 ms peak)",
            f"webrtc {_aec(webrtc, 'first_second_peak_dbfs', 'dBFS')}",
            beside("first_second_peak_dbfs", "dBFS") + "; emulator VAD starts at -51 dBFS",
        ),
        Row(
            "AEC: user kept in double talk (level / SI-SDR)",
            f"webrtc {num(f['dt_speech_db'])} dB / {num(f['dt_si_sdr_db'])} dB",
            f"speex {_aec(speex, 'dt_speech_db')} / {_aec(speex, 'dt_si_sdr_db')}; livekit"
            f" {_aec(livekit, 'dt_speech_db')} / {_aec(livekit, 'dt_si_sdr_db')}; none"
            f" {_aec(c['none'], 'dt_speech_db')} / {_aec(c['none'], 'dt_si_sdr_db')}",
        ),
        Row(
            "AEC: CPU per 10 ms frame (median)",
            f"webrtc {num(f['cpu_us_per_frame'])} µs; in the daemon's echo thread"
            f" {num(hands_free['echo_cpu_us_per_frame'])} µs",
            beside("cpu_us_per_frame", "µs"),
        ),
        Row(
            "hands-free in the room: turns its own voice started",
            f"cancel {cancel['turns_by_own_voice']} after {cancel['answers']} answers",
            f"echo off {off['turns_by_own_voice']} after {off['answers']};"
            f" half-duplex {half['turns_by_own_voice']} after {half['answers']}",
            "0",
            cancel["turns_by_own_voice"] == 0,
        ),
        Row(
            "hands-free: talking over the answer, onset -> flush",
            f"median {num(barge['onset_to_flush_ms']['median'], 0)} / max"
            f" {num(barge['onset_to_flush_ms']['max'], 0)} ms"
            f" (n={barge['onset_to_flush_ms']['n']}, missed {barge['missed']})",
            "half-duplex: the microphone is muted while the answer plays, no barge-in by voice",
        ),
    ]


def run_wake_word(module: ModuleType, quick: bool) -> Figures:
    result: Figures = module.main(quick=quick)
    return result


def wake_word_rows(f: Figures) -> list[Row]:
    """okay_nabu beside alexa: misses quiet and over an answer, false triggers, CPU."""
    nabu, alexa, said = f["okay_nabu"], f["alexa"], f["phrases"]

    def missed(model: Mapping[str, Any], condition: str) -> str:
        return f"{model['misses'][condition]}/{said} missed"

    def per_hour(model: Mapping[str, Any], key: str) -> str:
        found = model["false_triggers"][key]
        return f"{num(found['per_hour'], 2)}/h ({found['triggers']})"

    hours = f"{num(f['hours'], 2)} h"
    return [
        Row(
            "Wake word: misses, quiet room",
            f"okay_nabu {missed(nabu, 'quiet')}",
            f"alexa {missed(alexa, 'quiet')}",
        ),
        Row(
            "Wake word: misses, over an answer (AEC3)",
            f"okay_nabu {missed(nabu, 'over_answer')}",
            f"alexa {missed(alexa, 'over_answer')}",
        ),
        Row(
            f"Wake word: false triggers, {hours} of answers",
            f"okay_nabu {per_hour(nabu, 'cancelled')} (AEC3)",
            f"alexa {per_hour(alexa, 'cancelled')}; raw microphone: okay_nabu"
            f" {per_hour(nabu, 'raw')}, alexa {per_hour(alexa, 'raw')}",
        ),
        Row(
            "Wake word: CPU per 10 ms frame (median)",
            f"okay_nabu {num(nabu['cpu_us_per_frame'])} µs",
            f"alexa {num(alexa['cpu_us_per_frame'])} µs",
        ),
        Row(
            "Wake word: RSS added (package + model)",
            f"okay_nabu {num(nabu['rss_added_mb'])} MB",
            f"alexa {num(alexa['rss_added_mb'])} MB (beside numpy, loaded anyway)",
        ),
    ]


def run_fleet(module: ModuleType, quick: bool) -> Figures:
    result: Figures = module.main(quick=quick)
    return result


def fleet_rows(f: Figures) -> list[Row]:
    """Tokens beside the API key, the token service beside auth_tokens alone, the control
    socket beside a bare Unix-socket echo."""

    def p50_p95(stats: Mapping[str, Any], unit: str, digits: int = 1) -> str:
        return dist(stats, unit, "p50", "p95", digits)

    return [
        Row(
            "new session on a token: start -> setupComplete",
            p50_p95(f["new_session_token_ms"], "ms"),
            f"API key straight to the emulator: {p50_p95(f['new_session_key_ms'], 'ms')}",
        ),
        Row(
            "goAway resume on the token it has",
            p50_p95(f["resume_token_ms"], "ms"),
            f"on the API key: {p50_p95(f['resume_key_ms'], 'ms')}",
        ),
        Row(
            "token service: a token, one device in turn",
            f"{num(f['service_tokens_per_s'])} tokens/s; CPU"
            f" {num(f['service_cpu_ms_per_token'], 2)} ms/token; p50"
            f" {num(f['service_ms']['p50'])} ms",
            f"auth_tokens alone: {num(f['direct_calls_per_s'])} calls/s; p50"
            f" {num(f['direct_ms']['p50'])} ms; CPU {num(f['direct_cpu_ms_per_call'], 2)} ms"
            " (client + emulator)",
        ),
        Row(
            "control socket: status round trip",
            p50_p95(f["status_us"], "µs", 0),
            f"Unix-socket echo, same client: {p50_p95(f['echo_us'], 'µs', 0)}",
        ),
        Row(
            "control socket: volume N round trip",
            p50_p95(f["volume_us"], "µs", 0),
            f"daemon CPU {num(f['daemon_cpu_us_per_request'], 0)} µs/request above idle;"
            f" pilive ctl status as a process p50 {num(f['ctl_process_ms']['p50'], 0)} ms",
        ),
    ]


def at_least(value: object, limit: float) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and value >= limit


PULSE = ("pulseaudio", "pactl", "parec")

BENCHES: dict[str, Bench] = {
    b.name: b
    for b in (
        Bench("wire", "tests.bench.bench_wire", run_wire, wire_rows),
        Bench("ringbuf", "tests.bench.bench_ringbuf", run_ringbuf, ringbuf_rows),
        Bench("handover", "tests.bench.bench_handover", run_handover, handover_rows),
        Bench("camera", "tests.bench.bench_camera", run_camera, camera_rows),
        Bench("daemon", "tests.bench.bench_daemon", run_daemon, daemon_rows),
        Bench("audio", "tests.bench.bench_audio", run_audio, audio_rows, needs=PULSE),
        Bench("aec", "tests.bench.bench_aec", run_aec, aec_rows, needs=("espeak-ng",)),
        Bench("fleet", "tests.bench.bench_fleet", run_fleet, fleet_rows),
        Bench(
            "wake_word",
            "tests.bench.bench_wake_word",
            run_wake_word,
            wake_word_rows,
            needs=("espeak-ng",),
        ),
    )
}


# --- running ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
    # x86 says "model name"; a Raspberry Pi says "Model" (the board) and has no "model name".
    model = next(
        (fields[k] for k in ("model name", "hardware", "model") if fields.get(k)),
        platform.processor() or platform.machine(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "kernel": platform.release(),
    }


def run_one(bench: Bench, quick: bool) -> BenchResult:
    """Run a bench in this process; its printed table is captured, environment restored."""
    result = BenchResult(bench.name)
    missing = [p for p in bench.needs if shutil.which(p) is None]
    if missing:
        result.skipped = f"needs {', '.join(missing)} on PATH"
        return result
    saved_env = dict(os.environ)
    captured = io.StringIO()
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(captured):
            module = importlib.import_module(bench.module)
            figures = bench.run(module, quick)
        result.figures = dict(figures)
        result.rows = bench.rows(result.figures)
    except Exception as exc:  # a failed bench is reported; the others still run
        result.error = f"{type(exc).__name__}: {exc}"
        captured.write(traceback.format_exc())
    finally:
        os.environ.clear()  # benches point HOME at their rigs; the next one gets ours back
        os.environ.update(saved_env)
        result.seconds = time.monotonic() - start
        result.output = captured.getvalue()
    return result


COLUMNS = (("measure", 46), ("pilive", 46), ("beside it, same run", 64), ("goal", 24))


def render(info: Mapping[str, Any], results: Sequence[BenchResult], quick: bool) -> str:
    lines = [
        f"pilive benchmarks{' (quick sizes)' if quick else ''}: {info['date']}",
        f"{info['cores']} cores, {info['cpu']}, {info['implementation']} {info['python']},"
        f" Linux {info['kernel']}",
        "",
        "".join(f"{title:<{width}}" for title, width in COLUMNS) + "verdict",
    ]
    lines.append("-" * (sum(w for _, w in COLUMNS) + 7))
    for result in results:
        if result.skipped or result.error:
            word = "SKIPPED" if result.skipped else "ERROR"
            lines.append(f"{result.name + ' bench':<46}{word}: {result.skipped or result.error}")
            continue
        for row in result.rows:
            cells = (row.measure, row.value, row.beside, row.goal)
            line = ""
            for (_, width), text in zip(COLUMNS, cells, strict=True):
                line += f"{text:<{width - 1}} " if len(text) < width else f"{text} "
            lines.append(line + row.verdict)
    missed = [r.measure for res in results for r in res.rows if r.met is False]
    lines.append("")
    lines.append(
        f"MISSED goals: {len(missed)} ({'; '.join(missed)})" if missed else "goals missed: 0"
    )
    lines.append(f"bench time: {', '.join(f'{r.name} {r.seconds:.0f} s' for r in results)}")
    return "\n".join(lines)


def finite(value: Any) -> Any:
    """NaN (a percentile of no samples) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def report(info: Mapping[str, Any], results: Sequence[BenchResult], quick: bool) -> dict[str, Any]:
    """The JSON document: the same rows as the table plus every figure each bench returned."""
    return {
        "machine": dict(info),
        "quick": quick,
        "benches": {
            r.name: {
                "seconds": round(r.seconds, 2),
                "status": "skipped" if r.skipped else "error" if r.error else "ok",
                "reason": r.skipped or r.error,
                "figures": finite(r.figures),
                "rows": [{**asdict(row), "verdict": row.verdict} for row in r.rows],
                "output": r.output,
            }
            for r in results
        },
        "goals_missed": [row.measure for r in results for row in r.rows if row.met is False],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    parser.add_argument(
        "--only", metavar="NAME,...", help=f"run only these, of: {', '.join(BENCHES)}"
    )
    parser.add_argument("--verbose", action="store_true", help="also show each bench's own table")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown or not names:
        parser.error(
            f"--only: no bench named {', '.join(map(repr, unknown)) or '(none given)'};"
            f" choose from {', '.join(BENCHES)}"
        )
    args.names = names
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run, print the table, write the JSON; returns the JSON document."""
    args = parse_args(argv)
    info = machine()
    results = []
    for name in args.names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = run_one(BENCHES[name], args.quick)
        results.append(result)
        if args.verbose or result.error:
            print(result.output, file=sys.stderr)
    print(render(info, results, args.quick))
    document = report(info, results, args.quick)
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2, default=str, allow_nan=False) + "\n")
        print(f"figures written to {args.json}")
    return document


if __name__ == "__main__":
    doc = main()
    sys.exit(1 if any(b["status"] == "error" for b in doc["benches"].values()) else 0)
