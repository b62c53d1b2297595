"""The soak: the whole daemon for minutes under faults, then checks that nothing was lost or leaked.

    python -m tests.soak [--minutes 10] [--seed 1] [--json FILE]

`pilive run` runs as a subprocess with a timeline that presses the button (through gpiozero mock
pins) every few seconds, a noise microphone (file backend, paced in real time, every 20 ms chunk
unique), a file speaker and the synthetic camera, against the emulator behind a fault proxy.
At random moments (seeded) the emulator sends goAway or closes with 1000, 1011 "deadline" or
1011 "unavailable", or stalls; the proxy resets every connection or stalls both directions.

Checked at the end (each a named failure):
- no crash: the daemon ran throughout and exited 0 on SIGTERM, with no traceback in its log;
- no input bytes lost: every press became a turn the model took in, and each turn's audio is one
  contiguous piece of the microphone signal at least as long as the press plus the pre-roll;
- RSS growth after the warm-up within the limit; open fds and threads stable (from /proc);
- underruns outside injected faults = 0: an underrun is a run of digital silence inside an answer
  in what the speaker played (answers are a tone then the user's noise, never silent), and runs
  within a few seconds of an injected fault are the fault's doing, so they are counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pilive.emulator import Emulator
from tests.daemon_rig import (
    DaemonProcess,
    NotifySocket,
    Press,
    ProcSample,
    daemon_toml,
    noise_wav,
    presses_every,
    sample_process,
)
from tests.emulator_rig import emulator_options, running
from tests.fault_proxy import FaultProxy

PRESS_PERIOD_S = 5.0
HOLD_S = 1.5
PREROLL_S = 0.3  # config default audio.input.preroll_ms: audio from before the press
FAULT_KINDS = (
    "go_away",
    "close_1000",
    "close_1011_deadline",
    "close_1011_unavailable",
    "emulator_stall",
    "proxy_cut",
    "proxy_stall",
)
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
    samples: int = 0
    failures: list[str] = field(default_factory=list)


def fault_plan(rng: random.Random, total_s: float, first_s: float, every_s: float) -> list[Fault]:
    """Faults at jittered intervals; the first pass goes through every kind once, in order."""
    faults, at_s, n = [], first_s, 0
    while at_s < total_s - 2 * FAULT_MARGIN_S:
        kind = FAULT_KINDS[n] if n < len(FAULT_KINDS) else rng.choice(FAULT_KINDS)
        duration_s = rng.uniform(1.0, 3.0) if kind.endswith("stall") else 0.0
        faults.append(Fault(round(at_s, 2), kind, round(duration_s, 2)))
        at_s += every_s * rng.uniform(0.7, 1.3)
        n += 1
    return faults


async def inject(fault: Fault, emu: Emulator, proxy: FaultProxy, rng: random.Random) -> None:
    if fault.kind == "go_away":
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
    report: SoakReport, presses: Sequence[Press], starts_s: Sequence[float], origin_s: float
) -> None:
    """Each press's answer starts playing within 3 s of the release, unless a fault hit while
    that answer was on its way (then the server may never have sent it)."""
    for n, press in enumerate(presses, 1):
        release_s = press.at_s + press.hold_s
        if any(release_s - 1.0 - f.duration_s <= f.at_s <= release_s + 4.0 for f in report.faults):
            report.answers_excused += 1
            continue
        if not any(release_s <= t + origin_s <= release_s + 3.0 for t in starts_s):
            report.answers_missing.append(n)


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
        failures.append(f"no answer played for presses {report.answers_missing}")
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
        _no_earcons(config)
        notify = NotifySocket(tmp / "notify.sock")
        daemon = DaemonProcess(config, tmp / "daemon.log", notify)
        samples: list[ProcSample] = []
        injectors: set[asyncio.Task[None]] = set()
        try:
            await daemon.start()
            await notify.wait_for("READY=1", 20)
            start_s = daemon.started_s
            pending = list(report.faults)
            while time.monotonic() - start_s < total_s:
                if not daemon.running:
                    break
                now_s = time.monotonic() - start_s
                while pending and pending[0].at_s <= now_s:
                    task = asyncio.create_task(inject(pending.pop(0), emu, proxy, rng))
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
    check_answers(report, presses, starts_s, audio_origin_s)
    report.failures = verdicts(report, rss_limit_kb)
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
        f" ({report.rss_growth_kb:+d} kB after warm-up)"
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
        f"  answers not played {report.answers_missing} (excused by a fault in flight:"
        f" {report.answers_excused})"
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
