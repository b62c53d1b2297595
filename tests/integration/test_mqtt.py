"""Home Assistant through MQTT discovery, against a real broker (mosquitto, started by the test)
and the emulator: the discovery payloads follow Home Assistant's documented MQTT schema, the
entities work both ways, TLS (against mqtt.ca_file or the system's trust store) and a password
or none are used, and a lost broker is reconnected."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from pilive.config import Config
from pilive.controls.events import ApplianceState
from pilive.emulator import Emulator
from pilive.mqtt import discovery
from tests.integration.test_app import app_config, mic_wav, start
from tests.support.emulator_rig import emulator_options, running
from tests.support.mqtt_rig import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    Mosquitto,
    anonymous_mosquitto,
    mosquitto,
)

# Home Assistant's MQTT discovery schema as its documentation states it (integrations
# sensor.mqtt, switch.mqtt, number.mqtt, text.mqtt and "MQTT discovery"): the keys each
# platform takes, the ones it requires, and the device block's keys.
COMMON_KEYS = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "device",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "entity_picture",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "object_id",
    "default_entity_id",
    "origin",
    "payload_available",
    "payload_not_available",
    "platform",
    "qos",
    "unique_id",
}
PLATFORMS: dict[str, tuple[set[str], set[str]]] = {  # component -> (required, optional)
    "sensor": (
        {"state_topic"},
        {
            "device_class",
            "expire_after",
            "force_update",
            "last_reset_value_template",
            "options",
            "state_class",
            "suggested_display_precision",
            "unit_of_measurement",
            "value_template",
        },
    ),
    "switch": (
        {"command_topic"},
        {
            "command_template",
            "device_class",
            "optimistic",
            "payload_off",
            "payload_on",
            "retain",
            "state_off",
            "state_on",
            "state_topic",
            "value_template",
        },
    ),
    "number": (
        {"command_topic"},
        {
            "command_template",
            "device_class",
            "max",
            "min",
            "mode",
            "optimistic",
            "payload_reset",
            "retain",
            "state_topic",
            "step",
            "unit_of_measurement",
            "value_template",
        },
    ),
    "text": (
        {"command_topic"},
        {
            "command_template",
            "max",
            "min",
            "mode",
            "pattern",
            "retain",
            "state_topic",
            "value_template",
        },
    ),
}
DEVICE_KEYS = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}
DISCOVERY_TOPIC = re.compile(
    r"(?P<prefix>[\w/-]+)/(?P<component>\w+)/(?P<node>[\w-]+)/(?P<object>[\w-]+)/config"
)
TOPIC = re.compile(r"[^#+\s]+")


def check_against_home_assistant_schema(topic: str, payload: dict[str, Any]) -> str:
    """The component of a valid discovery message; AssertionError naming what is wrong."""
    match = DISCOVERY_TOPIC.fullmatch(topic)
    assert match, f"{topic}: not <prefix>/<component>/<node_id>/<object_id>/config"
    component = match["component"]
    assert component in PLATFORMS, f"{topic}: {component} is not a platform we declare"
    required, optional = PLATFORMS[component]
    keys = set(payload)
    assert required <= keys, f"{topic}: missing {required - keys}"
    unknown = keys - required - optional - COMMON_KEYS
    assert not unknown, f"{topic}: keys Home Assistant does not document: {unknown}"
    for key in keys:
        if key.endswith("_topic"):
            assert isinstance(payload[key], str) and TOPIC.fullmatch(payload[key]), (topic, key)
    assert isinstance(payload["unique_id"], str) and payload["unique_id"]
    device = payload["device"]
    assert set(device) <= DEVICE_KEYS, f"{topic}: device keys {set(device) - DEVICE_KEYS}"
    assert device["identifiers"] and all(isinstance(i, str) for i in device["identifiers"])
    if component == "sensor" and payload.get("device_class") == "enum":
        assert payload["options"] and all(isinstance(o, str) for o in payload["options"])
        assert "unit_of_measurement" not in payload and "state_class" not in payload
    if component == "number":
        assert payload["min"] < payload["max"] and payload["step"] > 0
        assert payload["mode"] in ("auto", "box", "slider")
    if component == "text":
        assert 0 <= payload["min"] <= payload["max"] <= 255
        assert payload["mode"] in ("text", "password")
    if component == "switch":
        assert payload["payload_on"] != payload["payload_off"]
    return component


def test_every_discovery_payload_follows_home_assistants_schema() -> None:
    """Six entities, each valid for its platform, one device, unique ids."""
    config = Config().mqtt
    messages = discovery(config)
    components = sorted(check_against_home_assistant_schema(t, p) for t, p in messages.items())
    assert components == ["number", "sensor", "sensor", "sensor", "switch", "text"]
    assert len({p["unique_id"] for p in messages.values()}) == 6
    assert len({json.dumps(p["device"], sort_keys=True) for p in messages.values()}) == 1


class Observer:
    """The test's own MQTT client: every message on the broker, the newest per topic."""

    def __init__(self) -> None:
        self.latest: dict[str, str] = {}
        self.changes = asyncio.Event()

    async def wait(self, topic: str, predicate: Any, timeout_s: float = 15.0) -> str:
        async with asyncio.timeout(timeout_s):
            while not (topic in self.latest and predicate(self.latest[topic])):
                self.changes.clear()
                await self.changes.wait()
        return self.latest[topic]


@contextlib.asynccontextmanager
async def observing(broker: Mosquitto) -> AsyncIterator[tuple[Observer, aiomqtt.Client]]:
    observer = Observer()
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username=USER, password=PASSWORD, identifier="test-observer"
    ) as client:
        await client.subscribe("homeassistant/#")
        await client.subscribe("pilive/#")

        async def collect() -> None:
            async for message in client.messages:
                payload = message.payload
                text = payload.decode() if isinstance(payload, bytes) else str(payload)
                observer.latest[str(message.topic)] = text
                observer.changes.set()

        task = asyncio.create_task(collect())
        try:
            yield observer, client
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def mqtt_config(
    tmp_path: Path, emu: Emulator, broker: Mosquitto, password: str, *, ca_file: bool = True
) -> Config:
    """TLS with a user and a password file; the broker's CA as mqtt.ca_file, or (`ca_file`
    False) none: the system's trust store then."""
    secret = tmp_path / "mqtt-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    ca_line = f'ca_file = "{broker.ca_path}"' if ca_file else ""
    extra = f"""
[mqtt]
enabled = true
host = "127.0.0.1"
port = {broker.tls_port}
tls = true
{ca_line}
username = "{USER}"
password_file = "{secret}"
keepalive_s = 5
"""
    return app_config(tmp_path, emu, extra)


async def test_home_assistant_sees_and_drives_the_speaker(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811 - the fixture imported above
) -> None:
    """Over TLS with a password the daemon announces itself (schema-valid discovery, online),
    publishes its state, and obeys the switch, the number and the announce text; a turn's
    transcripts arrive as sensors."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        observing(mosquitto) as (seen, client),
        start(mqtt_config(tmp_path, emu, mosquitto, PASSWORD), emu.api_key) as r,
    ):
        await r.settled()
        await seen.wait("pilive/availability", lambda v: v == "online")
        for topic in discovery(r.app.config.mqtt):
            payload = json.loads(await seen.wait(topic, bool))
            check_against_home_assistant_schema(topic, payload)
        await seen.wait("pilive/state", lambda v: v == "idle")
        await seen.wait("pilive/volume", lambda v: v == "80")
        await seen.wait("pilive/mute", lambda v: v == "OFF")

        await client.publish("pilive/mute/set", "ON")
        await seen.wait("pilive/mute", lambda v: v == "ON")
        await seen.wait("pilive/state", lambda v: v == "muted")
        assert r.app.household.muted and r.app.household.privacy.source == "remote"
        await client.publish("pilive/mute/set", "OFF")
        await seen.wait("pilive/state", lambda v: v == "idle")

        await client.publish("pilive/volume/set", "35.0")
        await seen.wait("pilive/volume", lambda v: v == "35")
        assert round(r.app.playback.volume_percent) == 35

        await client.publish("pilive/announce/set", "the laundry is done")
        await r.until(
            lambda: any(
                "the laundry is done" in t.texts
                for s in emu.recording.sessions.values()
                for t in s.turns
            )
        )
        await seen.wait("pilive/heard", lambda v: "the laundry is done" in v)
        await seen.wait("pilive/said", lambda v: v.startswith("turn 1"))
        await r.until(lambda: r.state is ApplianceState.IDLE, timeout_s=15)


async def test_without_tls_the_plain_listener_is_used_with_the_password(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811
) -> None:
    """mqtt.tls = false (the default): the daemon logs in on the broker's plain listener,
    announces itself and obeys a command as over TLS."""
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        config = mqtt_config(tmp_path, emu, mosquitto, PASSWORD)
        plain = dataclasses.replace(config.mqtt, tls=False, ca_file=None, port=mosquitto.port)
        async with (
            observing(mosquitto) as (seen, client),
            start(dataclasses.replace(config, mqtt=plain), emu.api_key) as r,
        ):
            await r.settled()
            await seen.wait("pilive/availability", lambda v: v == "online")
            await seen.wait("homeassistant/switch/pilive/mute/config", bool)
            await client.publish("pilive/volume/set", "45")
            await seen.wait("pilive/volume", lambda v: v == "45")
            assert round(r.app.playback.volume_percent) == 45


async def test_a_lost_broker_is_reconnected_and_told_everything_again(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811
) -> None:
    """The broker restarts (forgetting every retained message): the daemon reconnects by
    itself and publishes discovery, availability and state again; talking never stopped."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(mqtt_config(tmp_path, emu, mosquitto, PASSWORD), emu.api_key) as r,
    ):
        await r.settled()
        bridge = r.app.household.mqtt
        assert bridge is not None
        await r.until(lambda: bridge.connected)
        mosquitto.stop()
        await r.until(lambda: not bridge.connected)
        mosquitto.start()
        async with observing(mosquitto) as (seen, _):
            await seen.wait("pilive/availability", lambda v: v == "online", timeout_s=30)
            await seen.wait("homeassistant/switch/pilive/mute/config", bool)
            await seen.wait("pilive/state", lambda v: v == "idle")
        assert bridge.connections == 2
        assert r.app.failure is None


async def test_a_wrong_password_is_said_once_and_the_speaker_works_on(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused credentials: one warning (without the password), retries with backoff, and a
    turn still goes through."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        start(mqtt_config(tmp_path, emu, mosquitto, "not the password"), emu.api_key) as r,
    ):
        await r.settled()
        await asyncio.sleep(1.0)
        bridge = r.app.household.mqtt
        assert bridge is not None and not bridge.connected
        await r.hold(0.5)
        await r.until(lambda: emu.recording.counters["turns"] == 1)
    warnings = [rec.getMessage() for rec in caplog.records if rec.name == "pilive.mqtt"]
    assert len(warnings) == 1 and "retrying" in warnings[0]
    assert "not the password" not in caplog.text


def test_mqtt_settings_are_checked_by_key() -> None:
    """An enabled [mqtt] without a host, a password without a user, a CA without TLS: each
    named by its key."""
    from pilive.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config(
            '[mqtt]\nenabled = true\nca_file = "/ca.pem"\npassword_file = "/pw"\n', environ={}
        )
    text = str(caught.value)
    assert "mqtt.enabled = true: needs mqtt.host" in text
    assert 'mqtt.password_file = "/pw": needs mqtt.username' in text
    assert "mqtt.ca_file" in text and "set mqtt.tls = true" in text
    assert Config().mqtt.enabled is False  # off unless configured: nothing connects out


def test_a_password_file_others_can_read_is_refused_at_start(tmp_path: Path) -> None:
    """`pilive run` and `pilive check` refuse a password file readable by group or others,
    naming the key (as for the API key file)."""
    from pilive.config import parse_config
    from pilive.preflight import problems

    secret = tmp_path / "pw"
    secret.write_text("hunter2-secret\n")
    secret.chmod(0o644)
    config = parse_config(
        '[gpio]\npin_factory = "mock"\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nusername = "u"\npassword_file = "{secret}"\n',
        environ={},
    )
    found = problems(config, "test.toml")
    assert [p.key for p in found] == ["mqtt.password_file"]
    assert "chmod 600" in found[0].message and "hunter2" not in str(found[0])


async def test_a_volume_no_number_can_hold_is_refused_and_the_bridge_works_on(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811
) -> None:
    """Volumes that parse as a float but not as a whole number ("inf", "1e400", "nan") are
    refused with a warning; the bridge stays connected and obeys the next command."""
    mic_wav(tmp_path / "mic.wav")
    async with (
        running(emulator_options()) as emu,
        observing(mosquitto) as (seen, client),
        start(mqtt_config(tmp_path, emu, mosquitto, PASSWORD), emu.api_key) as r,
    ):
        await r.settled()
        await seen.wait("pilive/volume", lambda v: v == "80")
        for bad in ("inf", "-inf", "1e400", "nan"):
            await client.publish("pilive/volume/set", bad)
        await client.publish("pilive/volume/set", "30")
        await seen.wait("pilive/volume", lambda v: v == "30")
        bridge = r.app.household.mqtt
        task = r.app.household._mqtt_task
        assert bridge is not None and bridge.connected and bridge.connections == 1
        assert task is not None and not task.done()


async def test_an_unusable_ca_file_is_retried_until_it_is_good(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """mqtt.ca_file not a certificate (being replaced, damaged): one warning naming the key, the
    bridge keeps trying, and connects once the file is good again; the speaker works meanwhile."""
    mic_wav(tmp_path / "mic.wav")
    ca = tmp_path / "broker-ca.pem"
    ca.write_text("not a certificate\n")
    async with running(emulator_options()) as emu:
        config = mqtt_config(tmp_path, emu, mosquitto, PASSWORD)
        config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, ca_file=ca))
        async with start(config, emu.api_key) as r:
            await r.settled()
            bridge = r.app.household.mqtt
            task = r.app.household._mqtt_task
            assert bridge is not None and task is not None
            await r.until(lambda: "mqtt.ca_file" in caplog.text)
            assert not task.done() and not bridge.connected
            await asyncio.to_thread(shutil.copyfile, mosquitto.ca_path, ca)
            await r.until(lambda: bridge.connected, timeout_s=30)


async def test_a_broker_open_to_anonymous_clients_is_used_without_credentials(
    tmp_path: Path,
    anonymous_mosquitto: Mosquitto,  # noqa: F811
) -> None:
    """No mqtt.username or password_file (a broker with allow_anonymous): the daemon logs in
    with no user at all (the broker still refuses a wrong one, and its log names any user sent),
    announces itself and obeys the mute switch and the volume."""
    broker = anonymous_mosquitto
    mic_wav(tmp_path / "mic.wav")
    extra = f"""
[mqtt]
enabled = true
host = "127.0.0.1"
port = {broker.port}
keepalive_s = 5
"""
    async with running(emulator_options()) as emu:
        config = app_config(tmp_path, emu, extra)
        assert config.mqtt.username is None and config.mqtt.password_file is None
        async with (
            observing(broker) as (seen, client),
            start(config, emu.api_key) as r,
        ):
            await r.settled()
            await seen.wait("pilive/availability", lambda v: v == "online")
            for topic in discovery(config.mqtt):
                check_against_home_assistant_schema(topic, json.loads(await seen.wait(topic, bool)))
            await seen.wait("pilive/mute", lambda v: v == "OFF")
            await client.publish("pilive/mute/set", "ON")
            await seen.wait("pilive/state", lambda v: v == "muted")
            assert r.app.household.muted
            await client.publish("pilive/mute/set", "OFF")
            await seen.wait("pilive/state", lambda v: v == "idle")
            await client.publish("pilive/volume/set", "55")
            await seen.wait("pilive/volume", lambda v: v == "55")
            assert round(r.app.playback.volume_percent) == 55
    # mosquitto writes "as <client id> (p2, c1, k5, u'<user>')" for a client that sent a user.
    logins = re.findall(
        r"New client connected from \S+ as pilive-pilive \(([^)]*)\)", broker.log_text()
    )
    assert logins and all("u'" not in login for login in logins), logins


async def test_tls_without_ca_file_verifies_against_the_system_trust_store(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """mqtt.tls = true without mqtt.ca_file: the broker's certificate is verified against the
    system's trust store (OpenSSL's default verify paths, which SSL_CERT_FILE replaces here).
    While that store holds only an unrelated CA the bridge does not connect and the warning
    says the certificate failed verification; once the store holds the broker's CA the next
    retry connects, announces itself and obeys a command. Nothing else changes in between."""
    import trustme

    unrelated = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(unrelated))
    monkeypatch.setenv("SSL_CERT_FILE", str(unrelated))
    mic_wav(tmp_path / "mic.wav")
    async with running(emulator_options()) as emu:
        config = mqtt_config(tmp_path, emu, mosquitto, PASSWORD, ca_file=False)
        assert config.mqtt.tls and config.mqtt.ca_file is None
        async with start(config, emu.api_key) as r:
            await r.settled()
            bridge = r.app.household.mqtt
            assert bridge is not None
            assert bridge.connected or bridge.problem, "a bridge not connected says why"
            await r.until(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, timeout_s=30)
            assert not bridge.connected and bridge.connections == 0
            await r.until(lambda: "unknown ca" in mosquitto.log_text())  # the broker saw it too
            # `pilive ctl status` says so: the broker, the reason and the key that fixes it.
            said = r.app.household.status()["mqtt"]
            assert isinstance(said, dict) and said["connected"] is False, said
            problem = str(said["problem"])
            assert f"127.0.0.1:{mosquitto.tls_port}" in problem and "mqtt.ca_file" in problem

            monkeypatch.setenv("SSL_CERT_FILE", str(mosquitto.ca_path))
            async with observing(mosquitto) as (seen, client):
                await r.until(lambda: bridge.connected, timeout_s=30)
                await seen.wait("pilive/availability", lambda v: v == "online")
                await client.publish("pilive/volume/set", "25")
                await seen.wait("pilive/volume", lambda v: v == "25")
            assert round(r.app.playback.volume_percent) == 25 and bridge.connections == 1
            assert r.app.household.status()["mqtt"] == {"connected": True, "problem": None}
    warnings = [rec.getMessage() for rec in caplog.records if rec.name == "pilive.mqtt"]
    refused = [w for w in warnings if "CERTIFICATE_VERIFY_FAILED" in w]
    assert len(refused) == 1 and "retrying" in refused[0], warnings
