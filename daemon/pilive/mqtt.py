"""Home Assistant through MQTT discovery: pilive appears as a device by itself.

Entities (Home Assistant's MQTT discovery, one retained config message each under
`<discovery_prefix>/<component>/<device_id>/<object_id>/config`):
- sensor "Assist state": what the LED shows (idle, listening, thinking, speaking, muted, ...);
- switch "Mute": the privacy mute; turning it off never lifts a mute set at the device;
- number "Volume": 0-100 %;
- sensors "Last heard" and "Last said": the newest turn's transcripts (Home Assistant keeps 255
  characters of a state: the newest ones are sent);
- text "Announce": what is written there goes to the model as a typed turn, as `pilive ctl say`.
Every entity shares one availability topic: "online" once connected, "offline" at a clean stop,
and "offline" as the broker's last will when the connection is lost.

The client (aiomqtt) connects out; nothing listens. TLS verifies the broker's certificate
(against `ca_file`, else the system's CAs), and credentials come from `username` and a password
file that is never logged. A lost broker is retried with jittered backoff for ever; each new
connection publishes discovery and the current state again. Memory stays bounded whatever the
broker sends: a small incoming queue, and payloads longer than an entity allows are refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from pilive import __version__
from pilive.config import Secret
from pilive.config.model import MqttConfig
from pilive.controls.events import ApplianceState
from pilive.live import retry

log = logging.getLogger("pilive.mqtt")

MAX_STATE_CHARS = 255
"""Home Assistant refuses a sensor state longer than this, and a text entity's value too."""
MAX_QUEUED_MESSAGES = 64
STATE_TOPICS = ("state", "mute", "volume", "heard", "said")


class Household(Protocol):
    """What the bridge reads and asks of the household (household.Household)."""

    def status(self) -> dict[str, Any]: ...

    def say(self, text: str) -> dict[str, object]: ...

    def set_muted_remotely(self, on: bool) -> dict[str, object]: ...

    def set_volume(self, percent: int, by: str, *, tick: bool = False) -> None: ...


def discovery(config: MqttConfig) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload, for every entity (pure: the test checks these against
    Home Assistant's documented schema)."""
    base = config.base_topic
    device = {
        "identifiers": [config.device_id],
        "name": config.device_name,
        "manufacturer": "pilive",
        "model": "pilive voice assistant",
        "sw_version": __version__,
    }
    common = {
        "availability_topic": f"{base}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
    }
    entities: dict[tuple[str, str], dict[str, Any]] = {
        ("sensor", "assist_state"): {
            "name": "Assist state",
            "state_topic": f"{base}/state",
            "device_class": "enum",
            "options": [s.value for s in ApplianceState],
            "icon": "mdi:account-voice",
        },
        ("switch", "mute"): {
            "name": "Mute",
            "state_topic": f"{base}/mute",
            "command_topic": f"{base}/mute/set",
            "payload_on": "ON",
            "payload_off": "OFF",
            "icon": "mdi:microphone-off",
        },
        ("number", "volume"): {
            "name": "Volume",
            "state_topic": f"{base}/volume",
            "command_topic": f"{base}/volume/set",
            "min": 0,
            "max": 100,
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "%",
            "icon": "mdi:volume-high",
        },
        ("sensor", "last_heard"): {
            "name": "Last heard",
            "state_topic": f"{base}/heard",
            "icon": "mdi:account-voice",
        },
        ("sensor", "last_said"): {
            "name": "Last said",
            "state_topic": f"{base}/said",
            "icon": "mdi:speaker-message",
        },
        ("text", "announce"): {
            "name": "Announce",
            "command_topic": f"{base}/announce/set",
            "min": 0,
            "max": MAX_STATE_CHARS,
            "mode": "text",
            "icon": "mdi:bullhorn",
        },
    }
    return {
        f"{config.discovery_prefix}/{component}/{config.device_id}/{object_id}/config": {
            **payload,
            "unique_id": f"{config.device_id}_{object_id}",
            **common,
        }
        for (component, object_id), payload in entities.items()
    }


def state_payloads(status: dict[str, Any], shown: ApplianceState | None) -> dict[str, str]:
    """State topic (relative to base_topic) -> payload, from the household's status."""
    turn = status.get("last_turn") or {}
    mute = status.get("mute") or {}
    return {
        "state": (shown.value if shown is not None else str(status.get("state", ""))),
        "mute": "ON" if mute.get("muted") else "OFF",
        "volume": str(status.get("volume", "")),
        "heard": str(turn.get("heard", ""))[-MAX_STATE_CHARS:],
        "said": str(turn.get("said", ""))[-MAX_STATE_CHARS:],
    }


class MqttBridge:
    """One task (`run`) for the daemon's lifetime; `changed()` when anything shown may differ."""

    def __init__(
        self,
        config: MqttConfig,
        household: Household,
        *,
        password: Secret | None,
        shown: Callable[[], ApplianceState | None],
    ) -> None:
        self.config = config
        self.household = household
        self._password = password
        self._shown = shown
        self._dirty = asyncio.Event()
        self._published: dict[str, str] = {}
        self.connected = False
        self.connections = 0
        self.problem: str | None = f"{config.host}:{config.port}: not connected yet"
        """Why the broker is not connected, for `pilive ctl status` (None while connected)."""

    def changed(self) -> None:
        self._dirty.set()

    async def run(self) -> None:
        import aiomqtt  # noqa: PLC0415 - only with [mqtt] enabled

        cfg = self.config
        delays = retry.backoff(1.0, 60.0, 2.0, jitter=0.2)
        failing = False
        while True:
            try:
                tls_context = await asyncio.to_thread(self._tls_context)  # reads the CA file
            except OSError as exc:  # ssl.SSLError too: a CA file missing, unreadable or not PEM
                # Read again before each attempt: a certificate being replaced may be back.
                self.problem = f"mqtt.ca_file = {cfg.ca_file} is not usable ({exc.strerror or exc})"
                if not failing:
                    log.warning("MQTT: %s; retrying with backoff", self.problem)
                failing = True
                await asyncio.sleep(next(delays))
                continue
            client = aiomqtt.Client(
                cfg.host,
                cfg.port,
                identifier=f"pilive-{cfg.device_id}",
                username=cfg.username,
                password=self._password.reveal() if self._password is not None else None,
                tls_context=tls_context,
                keepalive=cfg.keepalive_s,
                will=aiomqtt.Will(f"{cfg.base_topic}/availability", "offline", qos=1, retain=True),
                max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
            )
            try:
                async with client:
                    self.connected = True
                    self.connections += 1
                    self.problem = None
                    failing = False
                    delays = retry.backoff(1.0, 60.0, 2.0, jitter=0.2)
                    log.info("MQTT: connected to %s:%d", cfg.host, cfg.port)
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                self.connected = False
                reason = self._redacted(str(exc))
                if "CERTIFICATE_VERIFY_FAILED" in reason and cfg.ca_file is None:
                    reason += " (a broker with its own CA needs mqtt.ca_file)"
                self.problem = f"{cfg.host}:{cfg.port}: {reason}"
                if not failing:
                    log.warning("MQTT: %s; retrying with backoff", self.problem)
                failing = True
                await asyncio.sleep(next(delays))

    async def _serve(self, client: Any) -> None:
        base = self.config.base_topic
        await client.subscribe(f"{base}/+/set", qos=1)
        for topic, payload in discovery(self.config).items():
            await client.publish(topic, json.dumps(payload), qos=1, retain=True)
        await client.publish(f"{base}/availability", "online", qos=1, retain=True)
        self._published.clear()
        publisher = asyncio.create_task(self._publish_changes(client), name="mqtt state")
        try:
            async for message in client.messages:
                self._command(str(message.topic), message.payload)
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            try:
                async with asyncio.timeout(2.0):
                    await client.publish(f"{base}/availability", "offline", qos=1, retain=True)
            except Exception as exc:  # the broker may be gone: the last will says it then
                log.debug("MQTT: could not say offline: %r", exc)

    async def _publish_changes(self, client: Any) -> None:
        base = self.config.base_topic
        while True:
            self._dirty.clear()
            payloads = state_payloads(self.household.status(), self._shown())
            for name, payload in payloads.items():
                if self._published.get(name) != payload:
                    await client.publish(f"{base}/{name}", payload, qos=1, retain=True)
                    self._published[name] = payload
            await self._dirty.wait()

    def _command(self, topic: str, payload: object) -> None:
        base = self.config.base_topic
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        if topic == f"{base}/mute/set":
            if text not in ("ON", "OFF"):
                log.warning("MQTT: mute takes ON or OFF, not %r", text[:40])
                return
            reply = self.household.set_muted_remotely(text == "ON")
            if not reply.get("ok"):
                log.warning("MQTT: mute %s refused: %s", text, reply.get("error"))
            self.changed()  # the switch shows what holds, refused or not
        elif topic == f"{base}/volume/set":
            try:
                percent = round(float(text))
            except (ValueError, OverflowError):  # not a number, NaN, or infinite ("1e400")
                percent = -1
            if not 0 <= percent <= 100:
                log.warning("MQTT: volume takes 0 to 100, not %r", text[:40])
                self.changed()
                return
            self.household.set_volume(percent, "Home Assistant")
            self.changed()
        elif topic == f"{base}/announce/set":
            if not text.strip() or len(text) > MAX_STATE_CHARS:
                log.warning("MQTT: announce takes 1 to %d characters", MAX_STATE_CHARS)
                return
            reply = self.household.say(text.strip())
            if not reply.get("ok"):
                log.warning("MQTT: announce refused: %s", reply.get("error"))
        else:
            log.debug("MQTT: no command at %s", topic)

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        ca = self.config.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)

    def _redacted(self, text: str) -> str:
        return self._password.redact(text) if self._password is not None else text
