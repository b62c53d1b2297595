"""Daemon-level figures: the whole `App` against the emulator on loopback.

In process (one event loop holds the App and the emulator; simulated file audio paced in real
time, gpiozero mock pins pressed from a separate thread as lgpio would, earcons off so the first
byte the speaker gets is the answer's):
- press -> `activityStart` on the wire, and from the accepted press (the press plus
  `conversation.min_press_ms`, when the design starts the turn) -> `activityStart`;
- release -> `activityEnd` (sent with the audio since the last whole mic chunk, at once);
- "on the wire" for those two is when the daemon's websocket send of the frame returned: the
  bytes are in the kernel then, and on loopback already in the emulator's socket. Beside it, two
  later points on the emulator's side: its read (its connection's data_received) and its model
  (the recording's time, after a queue hop to another task and the frames read with it). Both
  run in this process, on this loop, under this GIL, beside the camera thread that the turn's
  start sets to work, so they also measure how soon this loop gets back to reading, which a
  server elsewhere does not wait for. The plain client is measured at the same three points;
- mic chunk on the loop -> the same bytes on the wire (every chunk of the noise mic is unique);
- first answer byte sent by the emulator -> handed to the device (playback callback), and of that
  emulator -> `Playback.write` (network and parsing);
- barge-in: answer audio the device still took after the press, beside what was queued then;
- goAway while talking: handover gap and mic bytes the model did not take in;
- beside the wire figures, a plain websockets client on the same loop and emulator (the floor).
Wire times are the emulator's receive timestamps; every clock here is CLOCK_MONOTONIC.

As a subprocess (`python -m pilive run`, file mic, file speaker, synthetic camera at 1 frame/s
continuously, presses of 2.5 s every 5.5 s so mic and speaker alternate and overlap): CPU share
and RSS from /proc over the run, beside the same daemon idle (camera off, no presses); time from
process start to `READY=1` on a NOTIFY_SOCKET we bind, beside a bare `python -c pass`.

Memory, for each of the two configurations, side by side:
- steady RSS: median and max of VmRSS sampled every 0.5 s after a 3 s warm-up;
- the import floor: the daemon runs under `-X importtime`, which logs every module it imports
  (at start and lazily later); a fresh interpreter imports exactly those and reports its RSS.
  Steady minus floor is what `run` adds: threads, buffers, the camera's frames, the ring;
- the same two figures in the arm64 root of `make test-arm64` under qemu-user. That RSS is
  qemu's own (the guest's memory plus the translator and its code cache), labelled as such: an
  upper bound for a Pi, not a Pi's figure. Skipped, saying why, where the root is not built.

Run: python -m tests.bench.bench_daemon [--quick]
     python -m tests.bench.bench_daemon --rss-only [--seconds S] [--json FILE]  (the memory runs
     alone; this is what runs inside the arm64 root)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection

from pilive.app import App
from pilive.config import Secret, load_config
from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from tests.support.daemon_rig import (
    IMPORT_TRACE,
    DaemonProcess,
    NotifySocket,
    ProcSample,
    cpu_share,
    daemon_toml,
    imported_modules,
    noise_wav,
    presses_every,
    sample_process,
)
from tests.support.emulator_rig import ACTIVITY_END, ACTIVITY_START, RawClient, audio_input, running
from tests.support.emulator_rig import emulator_options as rig_options

REPO = Path(__file__).resolve().parents[2]
BYTES_PER_MS_24K = 48


def summary(values_ms: Sequence[float]) -> dict[str, float]:
    """median, p99 (nearest rank), max and n."""
    if not values_ms:
        return {"n": 0, "median": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values_ms)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p99": p99,
        "max": ordered[-1],
    }


# --- in process ---------------------------------------------------------------------------------


class TimedApp(App):
    """The App, noting when each mic chunk reached the loop while the turn's mic was open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mic_chunks: list[tuple[float, bytes, int]] = []

    def _on_mic_chunk(self, pcm: bytes) -> None:
        if self.conversation.mic_open:
            self.mic_chunks.append((time.monotonic(), pcm, self.stats.turns))
        super()._on_mic_chunk(pcm)


@dataclasses.dataclass
class WireFrame:
    at_s: float  # monotonic, when the emulator took it in
    kind: str  # "start", "end", "audio", "other"
    pcm: bytes = b""


class WireLog:
    """The emulator's received frames on one clock: the recording keeps each frame's time from
    its connection's opening, and the connection's opening time on the loop's clock."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def frames(self, connections: Callable[[str], bool] = lambda cid: True) -> list[WireFrame]:
        out = []
        for record in self.emu.recording.connections:
            opened = record.opened_at_s
            if not connections(record.connection_id):
                continue
            for frame in record.received:
                message = frame.message or {}
                ri = message.get("realtimeInput", {})
                if "activityStart" in ri:
                    out.append(WireFrame(opened + frame.at_s, "start"))
                elif "activityEnd" in ri:
                    out.append(WireFrame(opened + frame.at_s, "end"))
                elif "audio" in ri:
                    pcm = base64.b64decode(ri["audio"]["data"])
                    out.append(WireFrame(opened + frame.at_s, "audio", pcm))
        return sorted(out, key=lambda f: f.at_s)

    def answer_sends(self) -> list[float]:
        """When the emulator sent each model audio chunk (monotonic)."""
        out = []
        for record in self.emu.recording.connections:
            opened = record.opened_at_s
            for sent in record.sent:
                parts = (sent.message or {}).get("serverContent", {}).get("modelTurn", {})
                if any("inlineData" in p for p in parts.get("parts", [])):
                    out.append(opened + sent.at_s)
        return sorted(out)


@dataclasses.dataclass
class Taps:
    """Times on both ends of the process's websockets, for activityStart/End frames."""

    writes: list[tuple[int, str, float]] = dataclasses.field(default_factory=list)
    """(client connection id, "start"/"end"/"other", when its send returned: the frame is in
    the kernel's socket buffer)."""
    arrivals: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    """("start"/"end", when the bytes holding it reached the emulator's connection)."""


def activity_kind(head: str | bytes) -> str:
    text = head if isinstance(head, str) else head.decode("utf-8", "replace")
    return "start" if "activityStart" in text else "end" if "activityEnd" in text else "other"


@contextlib.contextmanager
def wire_taps() -> Iterator[Taps]:
    """Taps on ClientConnection.send and on the emulator's ServerConnection.data_received (the
    asyncio protocol callback that parses what arrived), for the duration."""
    taps = Taps()
    send = ClientConnection.send
    data_received = ServerConnection.data_received
    process_event = ServerConnection.process_event
    arrived_s: dict[int, float] = {}

    async def timed_send(self: ClientConnection, message: Any, *args: Any, **kwargs: Any) -> None:
        await send(self, message, *args, **kwargs)
        kind = activity_kind(message[:80] if isinstance(message, str | bytes) else "")
        taps.writes.append((id(self), kind, time.monotonic()))

    def stamped(self: ServerConnection, data: bytes) -> None:
        arrived_s[id(self)] = time.monotonic()
        data_received(self, data)

    def noted(self: ServerConnection, event: Any) -> None:
        kind = activity_kind(bytes(getattr(event, "data", b""))[:80])
        if kind != "other":
            taps.arrivals.append((kind, arrived_s.get(id(self), time.monotonic())))
        process_event(self, event)

    ClientConnection.send = timed_send  # type: ignore[method-assign]
    ServerConnection.data_received = stamped  # type: ignore[method-assign]
    ServerConnection.process_event = noted  # type: ignore[method-assign]
    try:
        yield taps
    finally:
        ClientConnection.send = send  # type: ignore[method-assign]
        ServerConnection.data_received = data_received  # type: ignore[method-assign]
        ServerConnection.process_event = process_event  # type: ignore[method-assign]


def first_after(times: Sequence[float], t: float) -> float | None:
    return next((x for x in times if x >= t), None)


class Finger:
    """Presses the mock button from its own thread, as lgpio calls back on its own thread."""

    def __init__(self, app: App) -> None:
        self.pin = app.controls.pin_factory.pin(app.config.gpio.button_pin)

    async def press(self, before: Callable[[], None] = lambda: None) -> float:
        def act() -> float:
            before()
            at_s = time.monotonic()
            self.pin.drive_low()
            return at_s

        return await asyncio.to_thread(act)

    async def release(self) -> float:
        def act() -> float:
            at_s = time.monotonic()
            self.pin.drive_high()
            return at_s

        return await asyncio.to_thread(act)


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench_daemon: {what} did not happen within {timeout_s:.0f} s")
        await asyncio.sleep(0.005)


def idle(app: App) -> bool:
    return (
        app.conversation.state is ApplianceState.IDLE
        and not app.playback.is_playing
        and app.link.connected
    )


async def floor_round(client: RawClient, chunks: int) -> list[tuple[str, float]]:
    """A plain websockets client: send time of each frame, paired later with its receive time."""
    sends = []
    audio = [(audio_input(bytes([n, 1]) * 320), "audio") for n in range(chunks)]
    for message, kind in [(ACTIVITY_START, "start"), *audio, (ACTIVITY_END, "end")]:
        sends.append((kind, time.monotonic()))
        await client.send(message)
        await asyncio.sleep(0.02)
    await client.turn()
    return sends


async def in_process(tmp: Path, rounds: int, barge_ins: int, handovers: int) -> dict[str, Any]:
    mic = noise_wav(tmp / "mic.wav", 120.0)
    base = load_config(REPO / "config" / "demo.toml")
    options = rig_options(time_scale=1.0, reply_delay_s=0.1)
    async with running(options) as emu:
        config = dataclasses.replace(
            base,
            live=dataclasses.replace(base.live, endpoint=emu.url),
            audio=dataclasses.replace(
                base.audio,
                input=dataclasses.replace(base.audio.input, file_path=mic),
                output=dataclasses.replace(
                    base.audio.output, file_path=tmp / "answer.wav", earcons=False
                ),
            ),
            state=dataclasses.replace(base.state, directory=tmp / "state"),
            timeline=(),
        )
        wire = WireLog(emu)
        app = TimedApp(config, Secret(emu.api_key, "bench"))
        with wire_taps() as taps:
            runner = asyncio.create_task(app.run())
            try:
                await until(
                    lambda: getattr(app, "link", None) is not None and app.link.connected,
                    20,
                    "connect",
                )
                await until(lambda: idle(app), 10, "idle after connecting")
                return await _measure(
                    app,
                    emu,
                    wire,
                    taps,
                    rounds=rounds,
                    barge_ins=barge_ins,
                    handovers=handovers,
                )
            finally:
                app.request_stop()
                await runner


async def _barge_in(app: App, finger: Finger) -> tuple[float, float]:
    """Press 300 ms into an answer: (answer ms the device still took, answer ms queued then)."""
    ring = app.playback.ring
    assert ring is not None
    started = ring.bytes_read
    await until(lambda: ring.bytes_read - started >= 300 * BYTES_PER_MS_24K, 10, "answer playing")
    at_press: list[int] = []
    await finger.press(lambda: at_press.extend((ring.bytes_read, ring.available)))
    await asyncio.sleep(0.3)
    return (ring.bytes_read - at_press[0]) / BYTES_PER_MS_24K, at_press[1] / BYTES_PER_MS_24K


async def _measure(
    app: TimedApp,
    emu: Emulator,
    wire: WireLog,
    taps: Taps,
    *,
    rounds: int,
    barge_ins: int,
    handovers: int,
) -> dict[str, Any]:
    finger = Finger(app)
    min_press_s = app.config.conversation.min_press_ms / 1000
    presses: list[float] = []
    releases: list[float] = []
    first_writes_s: list[tuple[float, float]] = []  # (answer_started_s, audio_started_s)
    stale_ms: list[float] = []
    queued_ms: list[float] = []
    gaps_before = len(app.link.counters.handover_gaps_s)
    handover_turns: set[int] = set()

    async def take_turn(hold_s: float, go_away_after_s: float | None = None) -> None:
        presses.append(await finger.press())
        if go_away_after_s is not None:
            await asyncio.sleep(go_away_after_s)
            emu.faults.go_away(1.0)
            handover_turns.add(app.stats.turns)
            await asyncio.sleep(hold_s - go_away_after_s)
        else:
            await asyncio.sleep(hold_s)
        releases.append(await finger.release())
        turns = app.stats.turns
        await until(lambda: emu.recording.session().turn_count >= turns, 10, "the turn")
        await until(
            lambda: app.playback.audio_started_s > app.playback.answer_started_s > releases[-1],
            10,
            "the answer",
        )

    for _ in range(rounds):
        await take_turn(0.6)
        first_writes_s.append((app.playback.answer_started_s, app.playback.audio_started_s))
        await until(lambda: idle(app), 15, "idle after the answer")
        await asyncio.sleep(0.2)

    for _ in range(barge_ins):
        await take_turn(1.2)
        first_writes_s.append((app.playback.answer_started_s, app.playback.audio_started_s))
        stale, queued = await _barge_in(app, finger)
        stale_ms.append(stale)
        queued_ms.append(queued)
        await asyncio.sleep(0.3)
        await finger.release()
        await until(lambda: idle(app), 15, "idle after the barge-in turn")
        await asyncio.sleep(0.2)

    for _ in range(handovers):
        await take_turn(1.0, go_away_after_s=0.3)
        await until(lambda: idle(app), 15, "idle after the handover turn")
        await asyncio.sleep(0.2)

    # The floor: a plain client, on the same loop, to the same emulator.
    floor_sends: list[tuple[str, float]] = []
    floor_started_s = time.monotonic()
    async with RawClient.connect(emu) as client:
        await client.setup()
        await asyncio.sleep(0.1)
        for _ in range(max(3, rounds // 2)):
            floor_sends += await floor_round(client, 10)
        floor_id = emu.recording.connections[-1].connection_id
        floor_socket = id(client.ws)

    # Pairing: each press/release with the first activityStart/End after it on the App's
    # connections; each mic chunk with the first time its bytes arrived.
    frames = wire.frames(lambda cid: cid != floor_id)

    def after_press(times: list[float], since_accepted: bool = True) -> list[float]:
        shift = min_press_s if since_accepted else 0.0
        return [
            (at - (t + shift)) * 1000 for t in presses if (at := first_after(times, t)) is not None
        ]

    def after_release(times: list[float]) -> list[float]:
        return [(at - t) * 1000 for t in releases if (at := first_after(times, t)) is not None]

    # Three points on the way for each press and release: our socket write (on the wire), the
    # emulator's read, the emulator's model (its recording); the plain client likewise.
    ours = [(kind, at_s) for conn, kind, at_s in taps.writes if conn != floor_socket]
    arrived = [(kind, at_s) for kind, at_s in taps.arrivals if at_s < floor_started_s]
    handled = [(f.kind, f.at_s) for f in frames]
    points = {"wire": ours, "read": arrived, "handled": handled}
    by_point: dict[str, dict[str, list[float]]] = {}
    for point, seen in points.items():
        starts = [at_s for kind, at_s in seen if kind == "start"]
        ends = [at_s for kind, at_s in seen if kind == "end"]
        by_point[point] = {
            "press": after_press(starts, since_accepted=False),
            "accepted": after_press(starts),
            "release": after_release(ends),
        }
    floor_by_point: dict[str, list[float]] = {"wire": [], "read": [], "handled": []}
    floor_frames = wire.frames(lambda cid: cid == floor_id)
    for activity in ("start", "end"):
        sent_at = [at_s for kind, at_s in floor_sends if kind == activity]
        seen_at = {
            "wire": [
                at_s for conn, k, at_s in taps.writes if conn == floor_socket and k == activity
            ],
            "read": [
                at_s for k, at_s in taps.arrivals if at_s >= floor_started_s and k == activity
            ],
            "handled": [f.at_s for f in floor_frames if f.kind == activity],
        }
        for point, times in seen_at.items():
            floor_by_point[point] += [
                (at - s) * 1000 for s, at in zip(sent_at, times, strict=False)
            ]
    audio_at: dict[bytes, float] = {}
    for f in frames:
        if f.kind == "audio":
            audio_at.setdefault(f.pcm, f.at_s)
    mic_ms = [
        (audio_at[pcm] - t) * 1000
        for t, pcm, turn in app.mic_chunks
        if turn not in handover_turns and pcm in audio_at
    ]

    # Input bytes lost: every chunk the mic gave while a turn was open must be in that turn.
    session = emu.recording.session(emu.recording.connections[0].session_id)
    lost_by_turn: dict[int, int] = {}
    for _, pcm, turn in app.mic_chunks:
        took = bytes(session.turns[turn - 1].audio) if 1 <= turn <= len(session.turns) else b""
        if took.find(pcm) < 0:
            lost_by_turn[turn] = lost_by_turn.get(turn, 0) + len(pcm)

    sends = wire.answer_sends()
    first_ms, network_ms = [], []
    for written_s, device_s in first_writes_s:
        sent = max((s for s in sends if s <= written_s), default=None)
        if sent is not None:
            first_ms.append((device_s - sent) * 1000)
            network_ms.append((written_s - sent) * 1000)

    floor_audio_ms: list[float] = []
    received = [f.at_s for f in floor_frames if f.kind == "audio"]
    sent_at = [t for k, t in floor_sends if k == "audio"]
    floor_audio_ms.extend((r - s) * 1000 for s, r in zip(sent_at, received, strict=False))

    gaps = list(app.link.counters.handover_gaps_s)[gaps_before:]
    return {
        "press_to_activity_start_ms": summary(by_point["wire"]["press"]),
        "accepted_press_to_activity_start_ms": summary(by_point["wire"]["accepted"]),
        "min_press_ms": min_press_s * 1000,
        "release_to_activity_end_ms": summary(by_point["wire"]["release"]),
        "accepted_press_to_activity_start_read_ms": summary(by_point["read"]["accepted"]),
        "release_to_activity_end_read_ms": summary(by_point["read"]["release"]),
        "accepted_press_to_activity_start_handled_ms": summary(by_point["handled"]["accepted"]),
        "release_to_activity_end_handled_ms": summary(by_point["handled"]["release"]),
        "floor_activity_read_ms": summary(floor_by_point["read"]),
        "floor_activity_handled_ms": summary(floor_by_point["handled"]),
        "mic_chunk_to_wire_ms": summary(mic_ms),
        "floor_activity_ms": summary(floor_by_point["wire"]),
        "floor_audio_ms": summary(floor_audio_ms),
        "first_answer_byte_to_device_ms": summary(first_ms),
        "first_answer_byte_to_write_ms": summary(network_ms),
        "prebuffer_ms": app.config.audio.output.prebuffer_ms,
        "barge_in_stale_ms": summary(stale_ms),
        "barge_in_queued_at_press_ms": summary(queued_ms),
        "handover_gap_ms": summary([g * 1000 for g in gaps]),
        "handovers": len(gaps),
        "input_bytes_lost": sum(lost_by_turn.values()),
        "input_bytes_lost_in_handovers": sum(
            n for turn, n in lost_by_turn.items() if turn in handover_turns
        ),
        "mic_bytes_in_turns": sum(len(pcm) for _, pcm, _ in app.mic_chunks),
        "turns": app.stats.turns,
    }


# --- as a subprocess ----------------------------------------------------------------------------


def import_floor_mb(modules: list[str]) -> float:
    """RSS of a fresh interpreter that imports `modules`, in order, and nothing else."""
    wanted = [m for m in modules if not m.endswith("__main__")]
    code = (
        "import importlib, re\n"
        f"for name in {wanted!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        pass\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmRSS:\\s+(\\d+)', status).group(1)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    return int(done.stdout) / 1024


def smaps_rollup_mb(pid: int) -> dict[str, float]:
    """Resident memory by kind: anonymous (heap, Python objects, buffers, stacks) and the rest
    (mapped files: the interpreter, libraries, extension modules)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) / 1024
    return {"anon_mb": fields["Anonymous"], "file_mb": fields["Rss"] - fields["Anonymous"]}


async def daemon_run(
    tmp: Path,
    emu: Emulator,
    name: str,
    *,
    seconds: float,
    camera_mode: str,
    talk: bool,
    ready_timeout_s: float = 20.0,
) -> dict[str, Any]:
    """Start `pilive run` (tracing its imports), wait for READY=1, sample /proc for `seconds`
    after a warm-up, stop; then the import floor of what it imported."""
    run_dir = tmp / name
    run_dir.mkdir()
    warmup_s = 3.0
    presses = presses_every(5.5, 2.5, warmup_s + seconds + 10, 1.0) if talk else []
    config = run_dir / "pilive.toml"
    config.write_text(
        daemon_toml(
            endpoint=emu.url,
            api_key=emu.api_key,
            mic_wav=noise_wav(run_dir / "mic.wav", 30.0),
            state_dir=run_dir / "state",
            output="file",
            output_path=run_dir / "answer.wav",
            camera_mode=camera_mode,
            presses=presses,
        )
    )
    notify = NotifySocket(run_dir / "notify.sock")
    daemon = DaemonProcess(config, run_dir / "daemon.log", notify, python_args=IMPORT_TRACE)
    samples: list[ProcSample] = []
    turns_before = emu.recording.counters["turns"]
    try:
        await daemon.start()
        ready_s = await notify.wait_for("READY=1", ready_timeout_s)
        await asyncio.sleep(warmup_s)
        end_s = time.monotonic() + seconds
        while time.monotonic() < end_s and daemon.running:
            samples.append(sample_process(daemon.pid))
            await asyncio.sleep(0.5)
        if not daemon.running:
            raise RuntimeError(f"pilive run exited early; log:\n{daemon.log_text()[-2000:]}")
        kinds = smaps_rollup_mb(daemon.pid)
    finally:
        exit_code = await daemon.stop() if daemon.process is not None else None
        notify.close()
    rss_mb = [s.rss_kb / 1024 for s in samples]
    modules = imported_modules(daemon.log_text())
    floor_mb = await asyncio.to_thread(import_floor_mb, modules)
    return {
        "ready_ms": (ready_s - daemon.started_s) * 1000,
        "cpu_pct": cpu_share(samples) * 100,
        "rss_mb_median": statistics.median(rss_mb),
        "rss_mb_max": max(rss_mb),
        "samples": len(samples),
        "seconds": samples[-1].at_s - samples[0].at_s,
        "threads": samples[-1].threads,
        "turns": emu.recording.counters["turns"] - turns_before,
        "exit_code": exit_code,
        "import_floor_mb": floor_mb,
        "above_floor_mb": statistics.median(rss_mb) - floor_mb,
        "modules": len(modules),
        "numpy_imported": "numpy" in modules,
        **kinds,
    }


async def ready_only(tmp: Path, emu: Emulator, name: str) -> float:
    """One start to READY=1 (camera off, no presses), then SIGTERM; milliseconds."""
    run_dir = tmp / name
    run_dir.mkdir()
    config = run_dir / "pilive.toml"
    config.write_text(
        daemon_toml(
            endpoint=emu.url,
            api_key=emu.api_key,
            mic_wav=noise_wav(run_dir / "mic.wav", 2.0),
            state_dir=run_dir / "state",
            camera_mode="off",
        )
    )
    notify = NotifySocket(run_dir / "notify.sock")
    daemon = DaemonProcess(config, run_dir / "daemon.log", notify)
    try:
        await daemon.start()
        return (await notify.wait_for("READY=1", 20) - daemon.started_s) * 1000
    finally:
        await daemon.stop()
        notify.close()


def start_to_exit_ms(code: str) -> float:
    """Wall time of `python -c code`: the interpreter's own start-up, for comparison."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.monotonic() - start) * 1000


async def memory_runs(tmp: Path, seconds: float, ready_timeout_s: float = 20.0) -> dict[str, Any]:
    """The two configurations as subprocesses: duplex audio with the camera, and idle."""
    async with running(rig_options(time_scale=1.0, reply_delay_s=0.3)) as emu:
        duplex = await daemon_run(
            tmp,
            emu,
            "duplex",
            seconds=seconds,
            camera_mode="continuous",
            talk=True,
            ready_timeout_s=ready_timeout_s,
        )
        idle_run = await daemon_run(
            tmp,
            emu,
            "idle",
            seconds=seconds / 2,
            camera_mode="off",
            talk=False,
            ready_timeout_s=ready_timeout_s,
        )
    return {"daemon_duplex": duplex, "daemon_idle": idle_run}


def arm64_memory(seconds: float) -> dict[str, Any]:
    """`memory_runs` inside the arm64 root under qemu-user (see the module docstring)."""
    import tests.arm64.__main__ as arm64

    try:
        arm64.ensure_binfmt()
        root = arm64.built_root()
    except arm64.RigUnavailable as error:
        return {"skipped": str(error)}
    if root is None:
        return {"skipped": "no arm64 root built for this checkout yet (make test-arm64 builds it)"}
    with tempfile.TemporaryDirectory(prefix="bench-arm64-") as out, arm64.overlay(root) as merged:
        script = "\n".join(
            [
                *arm64.install_lines(),
                f"cd {arm64.SRC_MOUNT}",
                f"{arm64.VENV}/bin/python -m tests.bench.bench_daemon --rss-only"
                f" --seconds {seconds:g} --json /srv/out/memory.json",
            ]
        )
        started_s = time.monotonic()
        status = arm64.nspawn(
            merged,
            script,
            binds=[f"--bind-ro={arm64.CHECKOUT}:{arm64.SRC_MOUNT}", f"--bind={out}:/srv/out"],
            timeout_s=1800,
        )
        result = Path(out) / "memory.json"
        if status != 0 or not result.exists():
            return {"skipped": f"the run in the arm64 root failed (exit {status})"}
        figures: dict[str, Any] = json.loads(result.read_text())
        figures["seconds_taken"] = time.monotonic() - started_s
        return figures


async def as_subprocess(tmp: Path, seconds: float, ready_runs: int) -> dict[str, Any]:
    figures = await memory_runs(tmp, seconds)
    async with running(rig_options(time_scale=1.0, reply_delay_s=0.3)) as emu:
        # The two memory runs trace their imports (a few ms at start): not counted here.
        ready = []
        for n in range(ready_runs):
            ready.append(await ready_only(tmp, emu, f"ready{n}"))
    bare = [await asyncio.to_thread(start_to_exit_ms, "pass") for _ in range(ready_runs)]
    imports = [
        await asyncio.to_thread(start_to_exit_ms, "import pilive.app") for _ in range(ready_runs)
    ]
    return {
        **figures,
        "ready_ms": summary(ready),
        "python_pass_ms": summary(bare),
        "python_import_app_ms": summary(imports),
    }


# --- entry points -------------------------------------------------------------------------------


async def measure(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as name:
        tmp = Path(name)
        figures = await in_process(
            tmp,
            rounds=8 if quick else 40,
            barge_ins=3 if quick else 10,
            handovers=3 if quick else 10,
        )
        figures.update(await as_subprocess(tmp, 8.0 if quick else 20.0, 2 if quick else 8))
    figures["arm64"] = await asyncio.to_thread(arm64_memory, 8.0 if quick else 20.0)
    return figures


def main(quick: bool = False) -> dict[str, Any]:
    """Measure, print the figures, return them (the harness prints them against the goals)."""
    figures = asyncio.run(measure(quick))
    print(f"{'daemon-level figure':40} value")
    for key, value in figures.items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        text = "  ".join(
            (f"{k}=" if k else "") + (f"{v:.2f}" if isinstance(v, float) else str(v))
            for k, v in items
        )
        print(f"{key:40} {text}")
    return figures


async def rss_only(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as name:
        # Under emulation a daemon takes much longer to start: READY may take a minute.
        return await memory_runs(Path(name), seconds, ready_timeout_s=180.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Daemon-level latency, CPU, RSS and start-up.")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument("--rss-only", action="store_true", help="only the two memory runs")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady sampling (--rss-only)")
    parser.add_argument("--json", type=Path, help="write the --rss-only figures here")
    args = parser.parse_args()
    if args.rss_only:
        memory = asyncio.run(rss_only(args.seconds))
        text = json.dumps(memory, indent=2)
        if args.json is not None:
            args.json.write_text(text + "\n")
        print(text)
    else:
        main(args.quick)
