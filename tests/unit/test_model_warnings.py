"""`pilive check` knows the Live models: retired, legacy and unknown names and options a model
refuses are warned about (the daemon logs the same at start); the default model is current."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import pytest

from pilive import check, config_warnings
from pilive.config import parse_config
from pilive.config.model import DEFAULT_MODEL
from pilive.live.models import KNOWN_MODELS, LiveModel, find_model, setup_warnings


def warnings_for(model: str, modality: str = "audio", functions: bool = True) -> list[str]:
    return setup_warnings(
        model, api_version="v1beta", response_modality=modality, has_functions=functions
    )


def test_the_default_model_is_current_and_draws_no_warning() -> None:
    """The shipped default is a stable Live model the service offers, with nothing to say."""
    model = find_model(DEFAULT_MODEL)
    assert model is not None and model.status == "stable"
    assert warnings_for(DEFAULT_MODEL) == []


@pytest.mark.parametrize("model", [m for m in KNOWN_MODELS if m.retired], ids=lambda m: m.name)
def test_a_retired_model_names_its_replacement(model: LiveModel) -> None:
    """A shut-down model: the warning says so (with the date when known) and names a model that
    is still served."""
    (text,) = warnings_for(model.name)
    assert "shut down" in text
    replacement = model.replacement or DEFAULT_MODEL
    assert replacement in text
    found = find_model(replacement)
    assert found is not None and not found.retired


def test_legacy_unknown_and_refused_options() -> None:
    """A legacy model points to its successor; an unknown name lists the known ones; text answers
    on an audio-only model and tools on a synchronous-only one are said."""
    assert any("legacy" in w for w in warnings_for("gemini-3.1-flash-live-preview"))
    assert any("synchronously" in w for w in warnings_for("gemini-3.1-flash-live-preview"))
    assert not any(
        "synchronously" in w for w in warnings_for("gemini-3.1-flash-live-preview", functions=False)
    )
    (unknown,) = warnings_for("gemini-9-imaginary")
    assert "not a Live model pilive knows" in unknown and DEFAULT_MODEL in unknown
    assert any("answers only in audio" in w for w in warnings_for("gemini-3.8-live", "text"))
    assert warnings_for("models/gemini-3.8-live") == []


def test_pilive_check_prints_the_warnings_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pilive check` on a config with a retired model: exit 0 (the file is valid), the warning
    on stderr naming the replacement."""
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setitem(sys.modules, "lgpio", types.ModuleType("lgpio"))
    config = tmp_path / "pilive.toml"
    config.write_text(
        '[live]\nendpoint = "ws://127.0.0.1:9"\napi_key = "k-0123456789"\n'
        'model = "gemini-2.0-flash-live-001"\n[gpio]\npin_factory = "mock"\n'
        '[audio.input]\nbackend = "null"\n[audio.output]\nbackend = "null"\n'
    )
    parser = argparse.ArgumentParser()
    check.configure_parser(parser)
    assert check.run(parser.parse_args(["--config", str(config)])) == 0
    err = capsys.readouterr().err
    assert "warning: live.model 'gemini-2.0-flash-live-001' was shut down on 2025-12-09" in err
    assert "gemini-2.5-flash-native-audio-preview-12-2025" in err


def test_the_shipped_configs_use_a_current_model() -> None:
    """config/pilive.toml and config/demo.toml name a model that is served and draws no
    warning with their options."""
    root = Path(__file__).resolve().parents[2]
    for name in ("pilive.toml", "demo.toml"):
        path = root / "config" / name
        config = parse_config(path.read_text(), source=str(path), base_dir=path.parent, environ={})
        assert config_warnings.model_warnings(config) == [], name


@pytest.mark.parametrize(
    ("table", "warned"),
    [
        ('host = "broker.lan"\nusername = "pi"\npassword_file = "/etc/pilive/mqtt"', True),
        (
            'host = "broker.lan"\nusername = "pi"\npassword_file = "/etc/pilive/mqtt"\ntls = true',
            False,
        ),
        ('host = "127.0.0.1"\nusername = "pi"\npassword_file = "/etc/pilive/mqtt"', False),
        ('host = "broker.lan"', False),
    ],
)
def test_a_broker_password_sent_in_the_clear_is_warned_about(table: str, warned: bool) -> None:
    """A password to a broker on another machine without TLS crosses the LAN readable: `pilive
    check` (and the daemon at start, through the same list) says so and how to fix it; with TLS,
    to loopback, or without a password there is nothing to say."""
    config = parse_config(f"[mqtt]\nenabled = true\n{table}\n", environ={})
    said = [w for w in config_warnings.model_warnings(config) if w.startswith("mqtt.")]
    assert bool(said) is warned
    if warned:
        assert "unencrypted" in said[0] and "mqtt.tls = true" in said[0]
        assert "broker.lan" in said[0]
