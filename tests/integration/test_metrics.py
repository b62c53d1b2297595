"""[metrics]: `pilive run` publishes its counters in the Prometheus text format, checked with
prometheus_client's own parser: on an HTTP port chosen by `listen`, and as a node-exporter
textfile. Nothing listens or is written when the section is empty."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pilive.config import ConfigError, parse_config
from tests.support.daemon_rig import DaemonProcess, NotifySocket, Press, daemon_toml, noise_wav
from tests.support.emulator_rig import emulator_options, running

TIMEOUT_S = 40.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, labels) -> value, from the real client's parser."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def config(tmp_path: Path, endpoint: str, key: str, metrics: str) -> Path:
    mic = tmp_path / "mic.wav"
    noise_wav(mic, 10.0)
    text = daemon_toml(
        endpoint=endpoint,
        api_key=key,
        mic_wav=mic,
        state_dir=tmp_path / "state",
        camera_mode="continuous",
        presses=[Press(1.0, 0.8)],
        extra="[metrics]\n" + metrics,
    )
    path = tmp_path / "pilive.toml"
    path.write_text(text)
    return path


async def scrape(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as reply:
        return reply.status, reply.headers.get("Content-Type", ""), await reply.text()


async def test_scraped_over_http_after_a_turn(tmp_path: Path) -> None:
    """`listen`: GET /metrics after one turn parses with prometheus_client's parser and counts
    the turn, one first-answer latency, the model's tokens, camera frames, a connected link and
    no reconnects; another path is 404 and another method 405."""
    port = free_port()
    async with running(emulator_options()) as emu:
        path = config(tmp_path, emu.url, emu.api_key, f'listen = "127.0.0.1:{port}"\n')
        notify = NotifySocket(tmp_path / "notify.sock")
        daemon = DaemonProcess(path, tmp_path / "daemon.log", notify)
        try:
            await daemon.start()
            await emu.wait_until(lambda: emu.recording.counters["turns"] == 1, TIMEOUT_S)
            url = f"http://127.0.0.1:{port}/metrics"
            async with asyncio.timeout(TIMEOUT_S):
                while True:
                    status, kind, text = await scrape(url)
                    values = samples(text)
                    if values.get(("pilive_first_answer_seconds_count", ())) == 1.0:
                        break
                    await asyncio.sleep(0.2)
            assert status == 200 and kind.startswith("text/plain")
            assert (await scrape(f"http://127.0.0.1:{port}/other"))[0] == 404
            async with aiohttp.ClientSession() as http, http.post(url) as reply:
                assert reply.status == 405
        finally:
            assert await daemon.stop() == 0
            notify.close()
    assert values[("pilive_turns_total", ())] == 1.0
    assert values[("pilive_first_answer_seconds_bucket", (("le", "+Inf"),))] == 1.0
    assert values[("pilive_model_tokens_total", (("kind", "total"),))] > 0
    assert values[("pilive_camera_frames_total", ())] >= 1
    assert values[("pilive_camera_frame_bytes_total", ())] > 0
    assert values[("pilive_link_connected", ())] == 1.0
    assert values[("pilive_playback_underruns_total", ())] >= 0
    assert {k[1] for k in values if k[0] == "pilive_reconnects_total"} == {
        (("kind", kind),) for kind in ("normal_end", "transient", "setup_refused", "handle_refused")
    }
    assert ("pilive_ephemeral_tokens_fetched_total", ()) not in values  # not a fleet device


async def test_written_as_a_node_exporter_textfile(tmp_path: Path) -> None:
    """`textfile`: the file is rewritten every interval (atomically, mode 0644 for
    node-exporter), parses, and its turn count follows the daemon's."""
    prom = tmp_path / "textfile" / "pilive.prom"
    prom.parent.mkdir()
    async with running(emulator_options()) as emu:
        path = config(
            tmp_path, emu.url, emu.api_key, f'textfile = "{prom}"\ntextfile_interval_s = 1.0\n'
        )
        notify = NotifySocket(tmp_path / "notify.sock")
        daemon = DaemonProcess(path, tmp_path / "daemon.log", notify)
        try:
            await daemon.start()
            async with asyncio.timeout(TIMEOUT_S):
                while (
                    not prom.exists()
                    or samples(prom.read_text()).get(("pilive_turns_total", ())) != 1.0
                ):
                    await asyncio.sleep(0.2)
        finally:
            assert await daemon.stop() == 0
            notify.close()
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644
    assert [p.name for p in prom.parent.iterdir()] == ["pilive.prom"]  # no temporary left


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[metrics]\ntextfile = "/tmp/pilive.txt"\n', 'metrics.textfile = "/tmp/pilive.txt": must'),
        ('[metrics]\nlisten = "example.com:9464"\n', 'metrics.listen = "example.com:9464": must'),
        ('[metrics]\nlisten = "127.0.0.1:0"\n', "the port must be 1-65535"),
        ("[metrics]\ntextfile_interval_s = 0.1\n", "metrics.textfile_interval_s = 0.1: must be"),
    ],
)
def test_bad_metrics_settings_are_named(text: str, expected: str) -> None:
    """Each refused [metrics] value is named with its key."""
    with pytest.raises(ConfigError) as refused:
        parse_config(text, environ={})
    assert expected in str(refused.value)


def test_nothing_is_published_by_default() -> None:
    """An empty [metrics] section (the default) asks for neither a file nor a port."""
    metrics = parse_config("", environ={}).metrics
    assert metrics.textfile is None and metrics.listen is None
