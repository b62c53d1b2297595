"""The soak: the whole daemon for minutes under faults, then checks that nothing was lost or leaked.

    python -m tests.soak [--minutes 10] [--seed 1] [--json FILE]

`pilive run` runs as a subprocess with a timeline that presses the button (through gpiozero mock
pins) every few seconds, a noise microphone (file backend, paced in real time, every 20 ms chunk
unique), a file speaker and the synthetic camera, against the emulator behind a fault proxy.
At random moments (seeded) the emulator sends goAway or closes with 1000, 1011 "deadline" or
1011 "unavailable", or stalls; the proxy resets every connection or stalls both directions. The
real service's reported behaviour (`pilive.emulator.catalogue`) is in the mix too: mid-session
1008 "The operation was aborted." and 1007 "Requested entity was not found.", goAway with
minutes of notice, goAway followed by silence, a refused (expired) handle, `interrupted` with
voice detection off, and a turn answered with turnComplete alone. Two more phases: a flood of
answer audio at 100x real time (memory must stay bounded by `max_backlog_s`), and the state
directory remounted read-only for a while, as the kernel does to a failing SD card (the daemon
runs in a private mount namespace for that; where none can be made, the phase is skipped and
the report says so).

Checked at the end (each a named failure):
- no crash: the daemon ran throughout and exited 0 on SIGTERM, with no traceback in its log;
- no input bytes lost: every press became a turn the model took in, and each turn's audio is one
  contiguous piece of the microphone signal at least as long as the press plus the pre-roll;
- no press ends in silence: each has its answer played, or an audible error (the error earcon's
  journal line: turn lost, no answer) before the next press; only a press whose answer a fault
  in flight held back until the next press superseded it is excused;
- RSS growth after the warm-up within the limit; open fds and threads stable (from /proc);
- underruns outside injected faults = 0: an underrun is a run of digital silence inside an answer
  in what the speaker played (answers are a tone then the user's noise, never silent), and runs
  within a few seconds of an injected fault are the fault's doing, so they are counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pilive.emulator import Emulator, replies
from pilive.emulator.faults import EmptyReply, Phase, SendInterrupted, SendMessages
from tests.support.daemon_rig import (
    DaemonProcess,
    NotifySocket,
    Press,
    ProcSample,
    daemon_toml,
    noise_wav,
    presses_every,
    sample_process,
)
from tests.support.emulator_rig import emulator_options, running
from tests.support.fault_proxy import FaultProxy

PRESS_PERIOD_S = 5.0
HOLD_S = 1.5
PREROLL_S = 0.3  # config default audio.input.preroll_ms: audio from before the press
FAULT_KINDS = (
    "flood",
    "state_readonly",
    "go_away",
    "close_1000",
    "close_1011_deadline",
    "close_1011_unavailable",
    "emulator_stall",
    "proxy_cut",
    "proxy_stall",
    "close_1008_aborted",
    "close_1007_entity",
    "go_away_long",
    "go_away_silent",
    "handle_expired",
    "interrupted",
    "empty_reply",
)
FLOOD_S = 3.0  # wall time of the flood: 300 s of answer audio at 100x real time
FLOOD_CHUNK = bytes(range(1, 256)) * 7 + bytes(range(1, 136))  # 40 ms at 24 kHz, never zero
ANSWER_TIMEOUT_S = 2.0  # the daemon's [connection] answer_timeout_s here: silent servers show fast
# The flood queues up to max_backlog_s (120 s) of 24 kHz audio, 5.8 MB, besides the ring's 30 s:
# with parsing on top, 40 MB is ample for a bound and far below an unbounded 5.4 MB/s.
PEAK_RSS_LIMIT_KB = (
    40 * 1024
)  # the daemon's [connection] answer_timeout_s here: silent servers show fast
FAULT_MARGIN_S = 5.0  # after a fault: reconnect backoff (<= 2 s), replay, the answer's tail
MIN_UNDERRUN_SAMPLES = 120  # 5 ms of exact zeros at 24 kHz: noise and tones never do that
MAX_UNDERRUN_S = 1.0  # silences longer than this are the pauses between answers


class SoakFailure(AssertionError):
    """One of the soak's checks failed; the message says which and by how much."""


@dataclass
class Fault:
    at_s: float  # since the daemon started
    kind: str
    duration_s: float = 0.0


@dataclass
class SoakReport:
    minutes: float
    seed: int
    presses: int = 0
    turns_taken: int = 0
    turns_short_or_broken: list[int] = field(default_factory=list)
    utterances_heard: int = 0
    turns_rolled_back: int = 0
    turns_repeated: int = 0
    faults: list[Fault] = field(default_factory=list)
    connections: int = 0
    exit_code: int | None = None
    tracebacks: int = 0
    rss_kb_start: int = 0
    rss_kb_end: int = 0
    rss_growth_kb: int = 0
    rss_kb_peak_growth: int = 0
    """The highest RSS over the first sample's, warm-up included (the flood is in there)."""
    fds_start: int = 0
    fds_max_late: int = 0
    threads_start: int = 0
    threads_max_late: int = 0
    tasks_start: int = 0
    tasks_max_late: int = 0
    underruns_outside_faults: list[float] = field(default_factory=list)
    underruns_near_faults: int = 0
    answers_missing: list[int] = field(default_factory=list)
    answers_excused: int = 0
    presses_errored: int = 0
    state_read_only_phases: int = 0
    """Times the state directory was remounted read-only (0: no mount namespace here)."""
    samples: int = 0
    turn_details: list[dict[str, object]] = field(default_factory=list)
    """Every turn the emulator recorded: where its audio sits in the mic signal (None: nowhere),
    so a failing run explains itself (saved with the run's files)."""
    failures: list[str] = field(default_factory=list)


def fault_plan(rng: random.Random, total_s: float, first_s: float, every_s: float) -> list[Fault]:
    """Faults at jittered intervals; the first pass goes through every kind once, in order."""
    faults, at_s, n = [], first_s, 0
    while at_s < total_s - 2 * FAULT_MARGIN_S:
        kind = FAULT_KINDS[n] if n < len(FAULT_KINDS) else rng.choice(FAULT_KINDS)
        duration_s = (
            rng.uniform(1.0, 3.0)
            if kind.endswith("stall")
            else rng.uniform(6.0, 12.0)
            if kind == "state_readonly"
            else FLOOD_S
            if kind == "flood"
            else 0.0
        )
        if kind == "flood":
            # Just after a release, while the answer plays: a flood that meets a held button is
            # discarded as an old answer and would not fill the backlog (its high-water mark
            # must fall in the warm-up; the peak check bounds it).
            after_release_s = 2.0 + HOLD_S + 1.0
            at_s = after_release_s + math.ceil((at_s - after_release_s) / PRESS_PERIOD_S) * (
                PRESS_PERIOD_S
            )
        faults.append(Fault(round(at_s, 2), kind, round(duration_s, 2)))
        at_s += every_s * rng.uniform(0.7, 1.3)
        n += 1
    return faults


class StateMount:
    """The state directory as its own read-only-able mount, inside the daemon's private mount
    namespace (`unshare --mount`): `set_read_only` remounts it there, as the kernel would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid: int | None = None
        self.toggles = 0

    @staticmethod
    def available() -> bool:
        unshare, nsenter = shutil.which("unshare"), shutil.which("nsenter")
        if unshare is None or nsenter is None or os.geteuid() != 0:
            return False
        probe = subprocess.run(
            [unshare, "--mount", "--propagation", "private", "true"],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def prefix(self) -> list[str]:
        script = 'mount --bind "$0" "$0" && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    async def set_read_only(self, read_only: bool) -> None:
        assert self.pid is not None
        mode = "ro" if read_only else "rw"
        process = await asyncio.create_subprocess_exec(
            "nsenter",
            "-t",
            str(self.pid),
            "-m",
            "mount",
            "-o",
            f"remount,bind,{mode}",
            str(self.directory),
        )
        if await process.wait() != 0:
            raise SoakFailure(f"could not remount the state directory {mode}")
        self.toggles += 1


async def inject(
    fault: Fault,
    emu: Emulator,
    proxy: FaultProxy,
    rng: random.Random,
    state: StateMount | None = None,
) -> None:
    if fault.kind == "flood":
        audio = replies.audio_message(FLOOD_CHUNK)
        count = int(FLOOD_S / 0.0004)
        emu.faults.now(SendMessages(audio, count=count, interval_s=0.0004))
        emu.faults.now(SendMessages({"serverContent": {"turnComplete": True}}))
    elif fault.kind == "state_readonly":
        if state is not None:
            await state.set_read_only(True)
            await asyncio.sleep(fault.duration_s)
            await state.set_read_only(False)
    elif fault.kind == "go_away":
        emu.faults.go_away(rng.uniform(0.5, 5.0))
    elif fault.kind == "close_1000":
        emu.faults.close(1000)
    elif fault.kind == "close_1011_deadline":
        emu.faults.close(1011, "Deadline expired before operation could complete.")
    elif fault.kind == "close_1011_unavailable":
        emu.faults.close(1011, "The service is currently unavailable.")
    elif fault.kind == "emulator_stall":
        emu.faults.stall(fault.duration_s)
    elif fault.kind == "proxy_cut":
        proxy.cut()
    elif fault.kind == "close_1008_aborted":
        emu.faults.close(1008, "The operation was aborted.")
    elif fault.kind == "close_1007_entity":
        emu.faults.close(1007, "Requested entity was not found.")
    elif fault.kind == "go_away_long":
        emu.faults.go_away(300.0)
    elif fault.kind == "go_away_silent":
        emu.faults.go_away(rng.uniform(5.0, 20.0), then_silent=True)
    elif fault.kind == "handle_expired":
        emu.expire_handles()
        emu.faults.close(1000)
    elif fault.kind == "interrupted":
        emu.faults.now(SendInterrupted())
    elif fault.kind == "empty_reply":
        emu.faults.on(Phase.USER_TURN, EmptyReply("RESPONSE_REJECTED"))
    else:
        proxy.stall()
        await asyncio.sleep(fault.duration_s)
        proxy.unstall()


def read_speaker(wav_path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(wav_path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), wav.getframerate()


def silent_runs_s(wav_path: Path) -> list[tuple[float, float]]:
    """(start, length) in seconds of each run of exact zeros of 5 ms or more between sound."""
    samples, rate_hz = read_speaker(wav_path)
    zero = np.concatenate(([False], samples == 0, [False]))
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    runs = []
    for start, end in zip(starts, ends, strict=True):
        if start == 0 or end >= len(samples):  # before the first or after the last answer
            continue
        if end - start >= MIN_UNDERRUN_SAMPLES:
            runs.append((start / rate_hz, (end - start) / rate_hz))
    return runs


def answer_starts_s(wav_path: Path) -> list[float]:
    """Where each answer starts in the speaker's output: sound after a pause of a second or more
    (or at the very start)."""
    samples, rate_hz = read_speaker(wav_path)
    loud = np.flatnonzero(samples != 0)
    if len(loud) == 0:
        return []
    pauses = np.flatnonzero(np.diff(loud) >= MAX_UNDERRUN_S * rate_hz)
    return [loud[0] / rate_hz] + [loud[i + 1] / rate_hz for i in pauses]


def check_answers(
    report: SoakReport,
    presses: Sequence[Press],
    starts_s: Sequence[float],
    origin_s: float,
    errors_s: Sequence[float],
) -> None:
    """Each press's answer starts playing before the next press, or an audible error (its journal
    line) comes by then. Excused: neither came, and a fault hit while that answer was on its way
    (the next press then superseded the answer the resumed link was bringing)."""
    for n, press in enumerate(presses, 1):
        release_s = press.at_s + press.hold_s
        next_s = presses[n].at_s if n < len(presses) else release_s + PRESS_PERIOD_S
        if any(release_s - 0.5 <= t <= next_s for t in errors_s):
            report.presses_errored += 1
            continue
        if any(release_s <= t + origin_s <= next_s for t in starts_s):
            continue  # answered before the next press (a replay after a fault included)
        if any(release_s - 1.0 - f.duration_s <= f.at_s <= release_s + 4.0 for f in report.faults):
            report.answers_excused += 1
            continue
        report.answers_missing.append(n)


_ERROR_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ pilive: (?:turn_lost|no_answer): ",
    re.MULTILINE,
)


def error_times_s(log_text: str, wall_start_s: float) -> list[float]:
    """When the daemon said a press got no answer (the lines that go with the error earcon), in
    seconds since it started (its log's wall-clock stamps against `wall_start_s`)."""
    out = []
    for match in _ERROR_LINE.finditer(log_text):
        stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
        out.append(stamp + int(match.group(2)) / 1000 - wall_start_s)
    return out


def check_turns(report: SoakReport, emu: Emulator, mic_pcm: bytes) -> None:
    """Each turn the model took in is one unbroken piece of the mic signal, long enough; every
    press was heard at least once.

    An utterance is known by where its audio starts in the mic signal. Resuming from a handle
    restores the conversation as of that handle, so a turn taken in after it is rolled back: if
    its answer had not arrived, the daemon replays it (a repeat); if it had, the exchange was
    heard and answered, and only the restored checkpoint forgets it. Both are counted, neither
    loses the user's words; an utterance never heard at all is input lost.
    """
    min_bytes = int((HOLD_S + PREROLL_S - 0.1) * 32000)
    sessions = emu.recording.sessions.values()
    turns = [t for s in sessions for t in s.turns]
    rolled_back = [t for s in sessions for t in s.rolled_back]
    report.turns_taken = len(turns)
    report.turns_rolled_back = len(rolled_back)
    starts: list[int] = []
    for n, turn in enumerate(turns + rolled_back, 1):
        audio = bytes(turn.audio)
        offset = mic_pcm.find(audio) if len(audio) >= min_bytes else -1
        report.turn_details.append(
            {
                "n": n,
                "connection": turn.connection_id,
                "source": turn.source,
                "audio_s": round(len(audio) / 32000, 3),
                "mic_at_s": round(offset / 32000, 3) if offset >= 0 else None,
                "completed": turn.completed,
                "interrupted": turn.interrupted,
                "rolled_back": n > len(turns),
            }
        )
        if offset < 0:
            report.turns_short_or_broken.append(n)
        else:
            starts.append(offset)
    distinct: list[int] = []
    for offset in sorted(starts):
        if not distinct or offset - distinct[-1] > 32000:  # more than 1 s apart: another press
            distinct.append(offset)
    report.utterances_heard = len(distinct)
    report.turns_repeated = len(starts) - len(distinct)


def check_process(report: SoakReport, samples: Sequence[ProcSample], warmup_s: float) -> None:
    settled = [s for s in samples if s.at_s - samples[0].at_s >= warmup_s]
    if len(settled) < 6:
        raise SoakFailure(f"only {len(settled)} samples after the warm-up: run longer")
    head, tail = settled[:3], settled[-3:]
    late = settled[len(settled) * 2 // 3 :]
    report.samples = len(samples)
    report.rss_kb_peak_growth = max(s.rss_kb for s in samples) - samples[0].rss_kb
    report.rss_kb_start = int(statistics.median(s.rss_kb for s in head))
    report.rss_kb_end = int(statistics.median(s.rss_kb for s in tail))
    report.rss_growth_kb = report.rss_kb_end - report.rss_kb_start
    report.fds_start = head[0].fds
    report.fds_max_late = max(s.fds for s in late)
    report.threads_start = head[0].threads
    report.threads_max_late = max(s.threads for s in late)


HEALTH_INTERVAL_S = 5.0
_HEALTH = re.compile(r"health tasks=(\d+) ")


def check_tasks(report: SoakReport, log_text: str, warmup_s: float) -> None:
    """asyncio tasks from the daemon's health lines (one every HEALTH_INTERVAL_S)."""
    counts = [int(m.group(1)) for m in _HEALTH.finditer(log_text)]
    skip = int(warmup_s // HEALTH_INTERVAL_S)
    if len(counts) > skip:
        report.tasks_start = counts[skip]
        report.tasks_max_late = max(counts[skip:])


def verdicts(report: SoakReport, rss_limit_kb: int) -> list[str]:
    failures = []
    if report.exit_code != 0 or report.tracebacks:
        failures.append(
            f"crash: exit code {report.exit_code}, {report.tracebacks} tracebacks in the log"
        )
    if report.utterances_heard != report.presses:
        failures.append(
            f"{report.presses} presses but the model heard {report.utterances_heard} utterances"
        )
    if report.turns_short_or_broken:
        failures.append(f"input lost: turns {report.turns_short_or_broken} short or broken")
    if report.rss_kb_peak_growth > PEAK_RSS_LIMIT_KB:
        failures.append(
            f"RSS peaked {report.rss_kb_peak_growth} kB above its start (>{PEAK_RSS_LIMIT_KB}):"
            " answer audio is not bounded"
        )
    if report.rss_growth_kb > rss_limit_kb:
        failures.append(f"RSS grew {report.rss_growth_kb} kB after warm-up (>{rss_limit_kb})")
    if report.fds_max_late > report.fds_start + 2:
        failures.append(f"open fds grew from {report.fds_start} to {report.fds_max_late}")
    if report.tasks_start == 0:
        failures.append("the daemon logged no health lines: asyncio tasks unchecked")
    elif report.tasks_max_late > report.tasks_start + 3:
        failures.append(f"asyncio tasks grew from {report.tasks_start} to {report.tasks_max_late}")
    if report.threads_max_late > report.threads_start + 2:
        failures.append(f"threads grew from {report.threads_start} to {report.threads_max_late}")
    if report.answers_missing:
        failures.append(
            f"presses {report.answers_missing} ended in silence: no answer and no audible error"
        )
    if report.underruns_outside_faults:
        failures.append(
            f"underruns outside injected faults at {report.underruns_outside_faults} s of audio"
        )
    return failures


async def soak(
    tmp: Path,
    minutes: float,
    seed: int = 1,
    *,
    fault_every_s: float = 20.0,
    rss_limit_kb: int = 1024,
) -> SoakReport:
    """Run the soak in `tmp`; returns the report with `failures` filled (empty: it passed)."""
    rng = random.Random(seed)
    total_s = minutes * 60
    warmup_s = min(60.0, total_s / 3)
    report = SoakReport(minutes, seed)
    mic = noise_wav(tmp / "mic.wav", total_s + 60, seed=seed)
    with wave.open(str(mic), "rb") as wav:
        mic_pcm = wav.readframes(wav.getnframes())
    presses = presses_every(PRESS_PERIOD_S, HOLD_S, total_s - 4.0, 2.0)
    report.presses = len(presses)
    report.faults = fault_plan(rng, total_s, min(8.0, warmup_s / 2 + 3), fault_every_s)
    if len(report.faults) >= len(FAULT_KINDS):
        # Each kind of outage sets a one-time high-water mark of buffered input: the warm-up
        # lasts until every kind has happened once (within the first two thirds of the run).
        last = report.faults[len(FAULT_KINDS) - 1]
        warmup_s = max(warmup_s, min(last.at_s + last.duration_s + FAULT_MARGIN_S, total_s * 2 / 3))
    async with (
        running(emulator_options(time_scale=1.0, reply_delay_s=0.3)) as emu,
        FaultProxy(emu.port) as proxy,
    ):
        config = tmp / "pilive.toml"
        config.write_text(
            daemon_toml(
                endpoint=proxy.url,
                api_key=emu.api_key,
                mic_wav=mic,
                state_dir=tmp / "state",
                output="file",
                output_path=tmp / "speaker.wav",
                camera_mode="on-activity",
                presses=presses,
                health_interval_s=HEALTH_INTERVAL_S,
            )
        )
        config.write_text(
            config.read_text().replace(
                "[connection]\n", f"[connection]\nanswer_timeout_s = {ANSWER_TIMEOUT_S}\n", 1
            )
        )
        _no_earcons(config)
        notify = NotifySocket(tmp / "notify.sock")
        state = StateMount(tmp / "state") if StateMount.available() else None
        (tmp / "state").mkdir(exist_ok=True)
        daemon = DaemonProcess(
            config,
            tmp / "daemon.log",
            notify,
            prefix=[*state.prefix(), str(tmp / "state")] if state is not None else (),
        )
        samples: list[ProcSample] = []
        injectors: set[asyncio.Task[None]] = set()
        try:
            await daemon.start()
            await notify.wait_for("READY=1", 20)
            start_s = daemon.started_s
            wall_start_s = time.time() - (time.monotonic() - start_s)
            if state is not None:
                state.pid = daemon.pid
            pending = list(report.faults)
            while time.monotonic() - start_s < total_s:
                if not daemon.running:
                    break
                now_s = time.monotonic() - start_s
                while pending and pending[0].at_s <= now_s:
                    task = asyncio.create_task(inject(pending.pop(0), emu, proxy, rng, state))
                    injectors.add(task)
                    task.add_done_callback(injectors.discard)
                samples.append(sample_process(daemon.pid))
                await asyncio.sleep(1.0)
            await asyncio.gather(*injectors)
            # The last press's answer plays out before the stop.
            await asyncio.sleep(4.0)
            still_running = daemon.running
        finally:
            report.exit_code = await daemon.stop()
            notify.close()
        report.connections = emu.recording.counters["connections"]
        report.state_read_only_phases = 0 if state is None else state.toggles // 2
        check_turns(report, emu, mic_pcm)
    if not still_running:
        report.exit_code = report.exit_code if report.exit_code else -1
    log_text = daemon.log_text()
    report.tracebacks = log_text.count("Traceback (most recent call last)")
    check_tasks(report, log_text, warmup_s)
    check_process(report, samples, warmup_s)
    audio_origin_s = (notify.first("READY=1") or start_s) - start_s
    for at_s, length_s in silent_runs_s(tmp / "speaker.wav"):
        if length_s >= MAX_UNDERRUN_S:
            continue
        daemon_s = at_s + audio_origin_s
        near = any(
            f.at_s - 1.0 <= daemon_s <= f.at_s + f.duration_s + FAULT_MARGIN_S
            for f in report.faults
        )
        if near:
            report.underruns_near_faults += 1
        else:
            report.underruns_outside_faults.append(round(at_s, 2))
    starts_s = answer_starts_s(tmp / "speaker.wav")
    check_answers(report, presses, starts_s, audio_origin_s, error_times_s(log_text, wall_start_s))
    report.failures = verdicts(report, rss_limit_kb)
    (tmp / "soak-report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def _no_earcons(config: Path) -> None:
    """Earcons have silences inside them; the speaker check wants answers only."""
    text = config.read_text().replace("[audio.output]\n", "[audio.output]\nearcons = false\n", 1)
    config.write_text(text)


def print_report(report: SoakReport) -> None:
    kinds: dict[str, int] = {}
    for fault in report.faults:
        kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
    print(f"soak: {report.minutes:g} min, seed {report.seed}")
    print(
        f"  presses {report.presses}, utterances heard {report.utterances_heard},"
        f" turns in the conversation {report.turns_taken}, rolled back to a checkpoint"
        f" {report.turns_rolled_back}, repeated {report.turns_repeated},"
        f" short/broken {report.turns_short_or_broken}"
    )
    print(f"  faults injected: {kinds}; connections {report.connections}")
    print(
        f"  RSS {report.rss_kb_start / 1024:.1f} -> {report.rss_kb_end / 1024:.1f} MB"
        f" ({report.rss_growth_kb:+d} kB after warm-up; peak {report.rss_kb_peak_growth:+d} kB"
        " over the first sample, the flood included)"
    )
    print(
        f"  fds {report.fds_start} -> max {report.fds_max_late} late;"
        f" threads {report.threads_start} -> max {report.threads_max_late} late;"
        f" asyncio tasks {report.tasks_start} -> max {report.tasks_max_late} late"
    )
    print(
        f"  underruns outside faults {len(report.underruns_outside_faults)},"
        f" near faults {report.underruns_near_faults}"
    )
    print(
        f"  presses ended in silence {report.answers_missing}; with an audible error"
        f" {report.presses_errored}; answer held back by a fault in flight"
        f" {report.answers_excused}"
    )
    print(
        f"  state directory read-only phases {report.state_read_only_phases}"
        " (0: no private mount namespace on this machine)"
    )
    print(f"  exit code {report.exit_code}, tracebacks {report.tracebacks}")
    print("  PASSED" if not report.failures else "  FAILED: " + "; ".join(report.failures))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="FILE")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep logs and audio here")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    with tempfile.TemporaryDirectory(prefix="pilive-soak-") as name:
        tmp = args.keep or Path(name)
        tmp.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(soak(tmp, args.minutes, args.seed))
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
