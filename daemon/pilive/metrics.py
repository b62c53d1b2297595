"""Fleet metrics in the Prometheus text format, with the standard client (prometheus_client).

Nothing is collected, written or listened on unless `[metrics]` asks: `textfile` (for
node-exporter's textfile collector, rewritten every `textfile_interval_s`, atomically) or
`listen` (`GET /metrics` on that address). Values are read from the parts' own counters when
the text is made, on the event loop, so the hot paths pay nothing and no lock is needed; only
the first-answer latency is observed as it happens (a histogram needs every value).

| metric                                  | type      | from                                |
|-----------------------------------------|-----------|-------------------------------------|
| pilive_turns_total                      | counter   | turns started (activityStart sent)  |
| pilive_first_answer_seconds             | histogram | activityEnd -> first answer audio   |
| pilive_reconnects_total{kind}           | counter   | ended connections by retry.Failure  |
| pilive_playback_underruns_total         | counter   | the playback ring's underruns       |
| pilive_model_tokens_total{kind}         | counter   | usageMetadata totals (usage module) |
| pilive_camera_frames_total, _bytes_total| counter   | frames sent to the model            |
| pilive_link_connected                   | gauge     | 1 while a session is set up         |
| pilive_ephemeral_tokens_fetched_total   | counter   | tokens from the token service       |

Reconnects are labelled by kind (normal_end, transient, setup_refused, handle_refused), not by
the cause's words, which a server chooses: a label must have a bounded set of values.

The HTTP side answers `GET /metrics` and nothing else, one request per connection, with the
request head limited in size and time and a bound on connections at once: it is plain HTTP
without authentication, for a loopback or LAN address chosen in the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pilive.live.retry import Failure
from pilive.ratelimit import LogLimiter

if TYPE_CHECKING:
    from pilive.app import App
    from pilive.config.model import MetricsConfig

log = logging.getLogger("pilive.metrics")

FIRST_ANSWER_BUCKETS_S = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_HEAD_MAX_BYTES = 8192
_HEAD_TIMEOUT_S = 5.0
_MAX_CLIENTS = 8
_TOKEN_KINDS = ("prompt", "response", "thoughts", "tool_use_prompt", "total")


class _AppCollector(Collector):
    """The app's counters, read when the metrics text is made."""

    def __init__(self, app: App) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        app = self._app
        stats = app.stats
        yield CounterMetricFamily(
            "pilive_turns", "Turns started (activityStart sent to the model)", value=stats.turns
        )
        link = getattr(app, "link", None)
        reconnects = CounterMetricFamily(
            "pilive_reconnects",
            "Connections that ended and were followed by another, by kind of end",
            labels=["kind"],
        )
        by_kind = link.counters.reconnects_by_kind if link is not None else {}
        for kind in Failure:
            reconnects.add_metric([kind.value], by_kind.get(kind.value, 0))
        yield reconnects
        playback = getattr(app, "playback", None)
        ring = playback.ring if playback is not None else None
        yield CounterMetricFamily(
            "pilive_playback_underruns",
            "Times the speaker ran dry while an answer played",
            value=ring.underruns if ring is not None else 0,
        )
        usage = getattr(app, "usage", None)
        if usage is not None:
            tokens = CounterMetricFamily(
                "pilive_model_tokens",
                "Tokens the model billed since start (usageMetadata), by kind",
                labels=["kind"],
            )
            totals = usage.totals
            for token_kind in _TOKEN_KINDS:
                tokens.add_metric([token_kind], getattr(totals, f"{token_kind}_tokens"))
            yield tokens
        yield CounterMetricFamily(
            "pilive_camera_frames", "Camera frames sent to the model", value=stats.frames_sent
        )
        yield CounterMetricFamily(
            "pilive_camera_frame_bytes",
            "JPEG bytes of the camera frames sent",
            value=stats.frame_bytes_sent,
        )
        yield GaugeMetricFamily(
            "pilive_link_connected",
            "1 while a Live API session is set up, else 0",
            value=1 if link is not None and link.connected else 0,
        )
        tokens_source = link.tokens if link is not None else None
        if tokens_source is not None:
            yield CounterMetricFamily(
                "pilive_ephemeral_tokens_fetched",
                "Ephemeral tokens fetched from the token service",
                value=tokens_source.counters.fetched,
            )


class MetricsExporter:
    """The registry for one app and the way it is published (`run` until cancelled)."""

    def __init__(self, app: App, config: MetricsConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_AppCollector(app))
        self._first_answer = Histogram(
            "pilive_first_answer_seconds",
            "From activityEnd to the first answer audio",
            buckets=FIRST_ANSWER_BUCKETS_S,
            registry=self.registry,
        )
        self._clients = asyncio.Semaphore(_MAX_CLIENTS)
        self._log_limiter = LogLimiter(300.0)
        self.bound: tuple[str, int] | None = None
        """The address `listen` bound (its port when the config asked for port 0)."""

    def first_answer(self, latency_s: float) -> None:
        self._first_answer.observe(latency_s)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    async def run(self) -> None:
        """Serve and/or write the textfile until cancelled."""
        server = None
        if self.config.listen is not None:
            host, _, port = self.config.listen.rpartition(":")
            server = await asyncio.start_server(
                self._client, host.strip("[]"), int(port), limit=_HEAD_MAX_BYTES
            )
            bound_host, bound_port = server.sockets[0].getsockname()[:2]
            self.bound = (bound_host, bound_port)
            log.info("metrics on http://%s/metrics", self.config.listen)
        try:
            if self.config.textfile is not None:
                await self._write_textfile_forever(self.config.textfile)
            else:
                await asyncio.Event().wait()
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    async def _write_textfile_forever(self, path: Path) -> None:
        while True:
            try:
                await asyncio.to_thread(_write_atomically, path, self.text())
            except OSError as exc:
                if self._log_limiter.allow("textfile"):
                    log.warning(
                        "cannot write the metrics file %s: %s (the service may write only the "
                        "directories it is allowed)%s",
                        path,
                        exc.strerror or exc,
                        self._log_limiter.suffix("textfile"),
                    )
            await asyncio.sleep(self.config.textfile_interval_s)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients.locked():
            writer.close()  # more at once than a scraper needs
            return
        async with self._clients:
            try:
                async with asyncio.timeout(_HEAD_TIMEOUT_S):
                    head = await reader.readuntil(b"\r\n\r\n")
                method, path = _request_line(head)
                if method != "GET":
                    status, body, kind = "405 Method Not Allowed", b"GET only\n", "text/plain"
                elif path.split("?", 1)[0] != "/metrics":
                    status, body, kind = "404 Not Found", b"see /metrics\n", "text/plain"
                else:
                    status, body, kind = "200 OK", self.text(), CONTENT_TYPE_LATEST
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                    + body
                )
                await writer.drain()
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass  # a client that does not send a request head in time, or too much of one
            except ConnectionError:
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3:
        return "", ""
    return parts[0], parts[1]


def _write_atomically(path: Path, data: bytes) -> None:
    """Written beside and renamed over: node-exporter never reads half a file. Mode 0644, as it
    runs as another user and the metrics hold nothing secret."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            os.fchmod(out.fileno(), 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
