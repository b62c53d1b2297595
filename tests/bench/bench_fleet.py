"""What ephemeral tokens and the household controls cost, each beside its alternative, one run.

1. A new session: from the link's start to `setupComplete`, with the API key straight to the
   emulator, beside a fleet device that first fetches a token from `pilive token-service serve`
   (HTTPS on loopback, private CA) and then opens the Constrained method. Interleaved, a fresh
   link (and token source) each time. Each link then takes a goAway and resumes: the handover
   gap on the key beside the gap on the token the conversation already has.
2. The token service: tokens one device gets one after another (a fresh HTTPS connection each,
   as a device makes), and the `serve` process's CPU per token from /proc, beside the emulator's
   auth_tokens call alone (the service's own request, sent from here on a kept-alive session).
3. The control socket: `status` and `volume N` round trips to a running `pilive run` (mock
   pins, file audio, emulator) through `pilive ctl`'s client code, beside the same client
   against a bare Unix-socket echo in another Python process (the floor), interleaved.

Run: python -m tests.bench.bench_fleet [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pilive.config import Secret
from pilive.control.protocol import encode, request_from_argv
from pilive.ctl import exchange
from pilive.emulator import Emulator
from pilive.live import retry
from pilive.live.events import LinkState
from pilive.net.connection import LinkStatus
from pilive.net.tokens import TokenSource
from pilive.tokenservice.config import parse_service_config
from pilive.tokenservice.devices import DeviceRegistry
from pilive.tokenservice.minting import Minter
from tests.support.daemon_rig import (
    DaemonProcess,
    NotifySocket,
    cpu_share,
    daemon_toml,
    noise_wav,
    sample_process,
)
from tests.support.emulator_rig import TlsMaterial, emulator_options, make_tls, running
from tests.support.fleet_rig import service_toml
from tests.support.link_rig import Harness

DEVICE = "bench"
GO_AWAY_S = 1.05
"""goAway's timeLeft: the link (handover margin 1 s) hands over about 50 ms after it."""
WARM_UPS = 10
"""Control-socket rounds run first and not kept."""
IDLE_S = 2.0
"""The daemon's own CPU between requests is sampled this long first, and taken off."""

ECHO_SERVER = """
import asyncio, sys

async def answer(reader, writer):
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_unix_server(answer, sys.argv[1])
    print("listening", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""
"""The floor for the control socket: an asyncio Unix server that answers a line with itself."""


def dist(values: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank), min, max and n."""
    if not values:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "min": math.nan, "max": math.nan}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],
        "min": ordered[0],
        "max": ordered[-1],
    }


# --- the token service as its own process ------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_process(
    emu: Emulator, directory: Path, tls: TlsMaterial
) -> AsyncIterator[tuple[str, Secret, int]]:
    """`pilive token-service serve` minting from `emu`, keys as systemd credentials and the
    rate limit raised so a bench's worth of tokens is never refused; yields (token URL, the
    device's credential, pid)."""
    state_dir = directory / "token-service"
    config_path = directory / "token-service.toml"
    text = service_toml(
        state_dir=state_dir,
        api_endpoint=emu.rest_url,
        tls=tls,
        burst=1000,
        tokens_per_minute=600.0,
    )
    # The API key and the TLS key as systemd credentials, as the unit hands them over.
    text = text.replace(f'tls_key_file = "{tls.key_path}"\n', "")
    config_path.write_text(text)
    config = parse_service_config(text, environ={})
    credential = DeviceRegistry(config.service.state_directory).add(DEVICE)
    credentials = directory / "credentials"
    credentials.mkdir(mode=0o700)
    for file_name, data in (
        ("gemini-api-key", emu.api_key.encode() + b"\n"),
        ("pilive-token-service-tls-key", tls.key_path.read_bytes()),
    ):
        (credentials / file_name).write_bytes(data)
        (credentials / file_name).chmod(0o600)
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(credentials))
    env.pop("GEMINI_API_KEY", None)
    log_path = directory / "token-service.log"
    with log_path.open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "pilive", "token-service", "--config", str(config_path)),
            "serve",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
        )
    try:
        prefix = "token service listening on "
        async with asyncio.timeout(30):
            while not any(line.startswith(prefix) for line in log_path.read_text().splitlines()):
                if server.returncode is not None:
                    raise RuntimeError(f"token service exited: {log_path.read_text()[-1000:]}")
                await asyncio.sleep(0.05)
        line = next(x for x in log_path.read_text().splitlines() if x.startswith(prefix))
        yield line.removeprefix(prefix).strip() + "/v1/token", credential, server.pid
    finally:
        if server.returncode is None:
            server.terminate()
        await server.wait()


# --- 1. a new session and a resume, key beside token -------------------------------------------


async def one_link(emu: Emulator, tokens: TokenSource | None) -> tuple[float, float]:
    """A fresh link: start -> setupComplete (ms), then a goAway and its handover gap (ms)."""
    loop = asyncio.get_running_loop()
    connected_at_s: list[float] = []

    def seen(status: LinkStatus) -> None:
        if status.state is LinkState.CONNECTED and not connected_at_s:
            connected_at_s.append(loop.time())

    harness = Harness(emu.url, "" if tokens else emu.api_key, tokens=tokens, on_status=seen)
    started_s = loop.time()
    async with harness:
        await harness.until(lambda: bool(connected_at_s))
        emu.faults.go_away(GO_AWAY_S)
        await harness.until(lambda: harness.link.counters.resumes == 1)
        gap_s = harness.link.counters.handover_gaps_s[-1]
    return (connected_at_s[0] - started_s) * 1000, gap_s * 1000


async def sessions(
    emu: Emulator, url: str, credential: Secret, tls: TlsMaterial, rounds: int
) -> dict[str, Any]:
    def source() -> TokenSource:
        return TokenSource(
            url,
            credential,
            ssl_context=tls.client_context,
            timeout_s=5.0,
            new_backoff=lambda: retry.backoff(0.05, 0.4),
        )

    times: dict[str, list[float]] = {"key": [], "token": []}
    gaps: dict[str, list[float]] = {"key": [], "token": []}
    for n in range(rounds + 2):  # two warm-up rounds, not kept
        for kind in ("key", "token") if n % 2 == 0 else ("token", "key"):
            setup_ms, gap_ms = await one_link(emu, source() if kind == "token" else None)
            if n >= 2:
                times[kind].append(setup_ms)
                gaps[kind].append(gap_ms)
    return {
        "new_session_key_ms": dist(times["key"]),
        "new_session_token_ms": dist(times["token"]),
        "resume_key_ms": dist(gaps["key"]),
        "resume_token_ms": dist(gaps["token"]),
    }


# --- 2. the token service's own cost -----------------------------------------------------------


async def minting(
    emu: Emulator, url: str, credential: Secret, tls: TlsMaterial, *, pid: int, count: int
) -> dict[str, Any]:
    """`count` tokens from the service (a fresh device client each), each followed by one
    auth_tokens call made directly with the service's own Minter."""
    config = parse_service_config(
        service_toml(state_dir=Path("unused"), api_endpoint=emu.rest_url), environ={}
    )
    minter = Minter(emu.rest_url, Secret(emu.api_key, "bench"), config.token, timeout_s=5.0)
    via_service_ms: list[float] = []
    direct_ms: list[float] = []
    service_cpu_s = 0.0
    direct_cpu_s = 0.0
    try:
        for n in range(count + 3):  # three warm-ups, not kept
            source = TokenSource(url, credential, ssl_context=tls.client_context, timeout_s=5.0)
            cpu_before = sample_process(pid).cpu_s
            start = time.perf_counter()
            await source.token_for(resuming=False)
            took_ms = (time.perf_counter() - start) * 1000
            cpu_s = sample_process(pid).cpu_s - cpu_before
            own_before = time.process_time()
            start = time.perf_counter()
            await minter.mint(datetime.now(UTC))
            direct = (time.perf_counter() - start) * 1000
            own_s = time.process_time() - own_before
            if n >= 3:
                via_service_ms.append(took_ms)
                direct_ms.append(direct)
                service_cpu_s += cpu_s
                direct_cpu_s += own_s
    finally:
        await minter.close()
    return {
        "tokens": count,
        "service_ms": dist(via_service_ms),
        "service_tokens_per_s": count / (sum(via_service_ms) / 1000),
        "service_cpu_ms_per_token": service_cpu_s * 1000 / count,
        "direct_ms": dist(direct_ms),
        "direct_calls_per_s": count / (sum(direct_ms) / 1000),
        "direct_cpu_ms_per_call": direct_cpu_s * 1000 / count,
    }


# --- 3. the control socket --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def echo_server(path: Path) -> AsyncIterator[None]:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ECHO_SERVER,
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        async with asyncio.timeout(20):
            await server.stdout.readline()
        yield
    finally:
        server.terminate()
        await server.wait()


@contextlib.asynccontextmanager
async def daemon(emu: Emulator, directory: Path, socket_path: Path) -> AsyncIterator[int]:
    """`pilive run` on mock pins and file audio against `emu`, its control socket at
    `socket_path`; yields its pid once READY=1 and the socket is there."""
    config = directory / "pilive.toml"
    config.write_text(
        daemon_toml(
            endpoint=emu.url,
            api_key=emu.api_key,
            mic_wav=noise_wav(directory / "mic.wav", 2.0),
            state_dir=directory / "state",
            camera_mode="off",
            extra=f'[control]\nsocket = "{socket_path}"\n',
        )
    )
    notify = NotifySocket(directory / "notify.sock")
    process = DaemonProcess(config, directory / "daemon.log", notify)
    try:
        await process.start()
        await notify.wait_for("READY=1", 30)
        async with asyncio.timeout(10):
            while not await asyncio.to_thread(socket_path.exists):
                await asyncio.sleep(0.02)
        yield process.pid
    finally:
        if process.process is not None:
            await process.stop()
        notify.close()


def round_trips(daemon_path: Path, echo_path: Path, rounds: int) -> dict[str, list[float]]:
    """Interleaved, in a thread of its own (the loop keeps serving the emulator): `status`,
    `volume N` and the echo floor, each through `pilive ctl`'s `exchange`; µs."""
    status = encode(request_from_argv(["status"]).to_json())
    volumes = [encode(request_from_argv(["volume", str(v)]).to_json()) for v in (60, 61)]
    out: dict[str, list[float]] = {"status": [], "volume": [], "echo": []}
    asks: list[tuple[str, Path, Callable[[int], bytes]]] = [
        ("echo", echo_path, lambda n: status),
        ("status", daemon_path, lambda n: status),
        ("volume", daemon_path, lambda n: volumes[n % 2]),
    ]
    for n in range(rounds + WARM_UPS):  # warm-ups first, not kept
        for name, path, line in asks if n % 2 == 0 else asks[::-1]:
            start = time.perf_counter()
            reply = exchange(path, line(n))
            took_us = (time.perf_counter() - start) * 1e6
            if name != "echo" and not reply.get("ok"):
                raise RuntimeError(f"the daemon refused {line(n)!r}: {reply}")
            if n >= WARM_UPS:
                out[name].append(took_us)
    return out


async def ctl_process_ms(socket_path: Path, runs: int) -> list[float]:
    """`pilive ctl status` as a script runs it: a whole Python process each time."""
    took: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "pilive", "ctl", "--socket", str(socket_path), "status"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        if await process.wait() != 0:
            raise RuntimeError("pilive ctl status failed")
        took.append((time.perf_counter() - start) * 1000)
    return took


async def control(emu: Emulator, directory: Path, rounds: int, runs: int) -> dict[str, Any]:
    daemon_path, echo_path = directory / "control.sock", directory / "echo.sock"
    async with daemon(emu, directory, daemon_path) as pid, echo_server(echo_path):
        idle_before = sample_process(pid)
        await asyncio.sleep(IDLE_S)
        busy_before = sample_process(pid)
        got = await asyncio.to_thread(round_trips, daemon_path, echo_path, rounds)
        busy_after = sample_process(pid)
        idle_share = cpu_share([idle_before, busy_before])
        busy_cpu_s = busy_after.cpu_s - busy_before.cpu_s
        above_idle_s = busy_cpu_s - idle_share * (busy_after.at_s - busy_before.at_s)
        ctl_ms = await ctl_process_ms(daemon_path, runs)
    requests = len(got["status"]) + len(got["volume"]) + 2 * WARM_UPS
    return {
        "status_us": dist(got["status"]),
        "volume_us": dist(got["volume"]),
        "echo_us": dist(got["echo"]),
        "daemon_cpu_us_per_request": above_idle_s * 1e6 / requests,
        "daemon_idle_cpu_pct": idle_share * 100,
        "ctl_process_ms": dist(ctl_ms),
    }


# --- the whole bench ---------------------------------------------------------------------------


async def measure(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as name:
        directory = Path(name)
        tls = make_tls(directory)
        figures: dict[str, Any] = {}
        async with (
            running(emulator_options(auth_tokens_api=True)) as emu,
            serve_process(emu, directory, tls) as (url, credential, pid),
        ):
            figures.update(await sessions(emu, url, credential, tls, 5 if quick else 20))
            tokens = 20 if quick else 100
            figures.update(await minting(emu, url, credential, tls, pid=pid, count=tokens))
            control_dir = directory / "daemon"
            control_dir.mkdir()
            figures.update(await control(emu, control_dir, 50 if quick else 300, 2 if quick else 5))
    return figures


def _row(name: str, stats: dict[str, float], unit: str, digits: int = 1) -> str:
    return (
        f"{name:<44}{stats['p50']:>10.{digits}f}{stats['p95']:>10.{digits}f}"
        f"{stats['max']:>10.{digits}f}{stats['n']:>6}  {unit}"
    )


def main(quick: bool = False) -> dict[str, Any]:
    f = asyncio.run(measure(quick))
    print("fleet tokens and the control socket, loopback, interleaved in one run")
    print(f"{'':44}{'p50':>10}{'p95':>10}{'max':>10}{'n':>6}")
    print(_row("new session, API key: start -> setupComplete", f["new_session_key_ms"], "ms"))
    print(_row("new session, token fetched over HTTPS first", f["new_session_token_ms"], "ms"))
    print(_row("goAway resume gap, API key", f["resume_key_ms"], "ms"))
    print(_row("goAway resume gap, the token it has", f["resume_token_ms"], "ms"))
    print(_row("token from the service (device client)", f["service_ms"], "ms"))
    print(_row("auth_tokens call alone (service's Minter)", f["direct_ms"], "ms"))
    print(_row("control socket: status", f["status_us"], "µs", 0))
    print(_row("control socket: volume N (persisted)", f["volume_us"], "µs", 0))
    print(_row("bare Unix-socket echo, same client", f["echo_us"], "µs", 0))
    print(_row("pilive ctl status, whole process", f["ctl_process_ms"], "ms", 0))
    print(
        f"token service: {f['service_tokens_per_s']:.1f} tokens/s from one device,"
        f" {f['service_cpu_ms_per_token']:.2f} ms CPU per token (serve process);"
        f" auth_tokens alone {f['direct_calls_per_s']:.1f} calls/s,"
        f" {f['direct_cpu_ms_per_call']:.2f} ms CPU per call (client + emulator)"
    )
    print(
        f"daemon CPU per control request: {f['daemon_cpu_us_per_request']:.0f} µs above its"
        f" idle {f['daemon_idle_cpu_pct']:.2f} % of a core"
    )
    return f


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_fleet")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    main(quick=parser.parse_args().quick)
