"""Fuzzing the server-frame parser and the session: only LiveProtocolError may ever escape.

Inputs: arbitrary bytes, arbitrary JSON values, and valid frames mutated (keys dropped, renamed
or retyped, base64 broken, values nested tens of thousands deep, text truncated or re-encoded).
The CI profile runs a few hundred examples per test; the `slow` copies run 100,000 each.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pilive.live import events as ev
from pilive.live import wire
from pilive.live.session import LiveSession

EVENT_TYPES = (
    ev.SetupComplete,
    ev.AudioChunk,
    ev.TextPart,
    ev.Interrupted,
    ev.GenerationComplete,
    ev.TurnComplete,
    ev.InputTranscription,
    ev.OutputTranscription,
    ev.Grounding,
    ev.WaitingForInput,
    ev.ToolCall,
    ev.ToolCallCancellation,
    ev.GoAway,
    ev.SessionResumptionUpdate,
    ev.UsageMetadata,
    ev.VoiceActivity,
    ev.UnknownMessage,
)

VALID: list[dict[str, Any]] = [
    {"setupComplete": {}},
    {"setupComplete": {"sessionId": "s-1"}},
    {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "AAECAwQF"}},
                    {"text": "hi", "thought": False},
                    {"inline_data": {"mime_type": "audio/pcm", "data": "__79AA"}},
                ]
            },
            "turnComplete": True,
            "turnCompleteReason": "NEED_MORE_INPUT",
        },
        "usageMetadata": {
            "promptTokenCount": "5",
            "responseTokenCount": 7,
            "totalTokenCount": 12,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
        },
    },
    {
        "serverContent": {
            "inputTranscription": {"text": "x", "finished": True},
            "outputTranscription": {"text": "y"},
            "interrupted": True,
            "generationComplete": True,
            "waitingForInput": True,
            "groundingMetadata": {"webSearchQueries": ["q"]},
        }
    },
    {"toolCall": {"functionCalls": [{"id": "fc-1", "name": "f", "args": {"a": [1, {"b": None}]}}]}},
    {"toolCallCancellation": {"ids": ["fc-1", "fc-2"]}},
    {"goAway": {"timeLeft": "1.5s"}},
    {"sessionResumptionUpdate": {"newHandle": "h", "resumable": True}},
    {"session_resumption_update": {"resumable": False, "last_consumed_client_message_index": "42"}},
    {"voiceActivity": {"type": "ACTIVITY_START", "audioOffset": "0.5s"}},
    {"somethingNew": {"x": 1}},
]

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
# Keys the parser knows, so random objects often reach deep branches.
KNOWN_KEYS = sorted(
    {
        "setupComplete", "serverContent", "server_content", "modelTurn", "model_turn", "parts",
        "inlineData", "inline_data", "mimeType", "data", "text", "thought", "turnComplete",
        "interrupted", "generationComplete", "inputTranscription", "outputTranscription",
        "finished", "groundingMetadata", "waitingForInput", "toolCall", "functionCalls", "id",
        "name", "args", "toolCallCancellation", "ids", "goAway", "timeLeft",
        "sessionResumptionUpdate", "newHandle", "resumable", "lastConsumedClientMessageIndex",
        "usageMetadata", "promptTokenCount", "promptTokensDetails", "tokenCount", "modality",
        "voiceActivity", "audioOffset", "type", "turnCompleteReason", "sessionId",
    }
)  # fmt: skip
keyed_values = st.recursive(
    json_leaves | st.sampled_from(["audio/pcm;rate=24000", "AAAA", "1.5s", "-_=="]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=40,
)

RENAMES = st.sampled_from(["", "x", "Data", "DATA", "parts ", "mime_type", "inline_data", "ids"])
BAD_BASE64 = st.text(alphabet="AB+/-_=*.é\x00 \n", max_size=12)
DEEP = "__pilive_deep__"


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated_frames(draw: st.DrawFn) -> str | bytes:
    """A valid frame with 1-4 mutations, serialised (maybe deep-nested, cut, re-encoded)."""
    frame = copy.deepcopy(draw(st.sampled_from(VALID)))
    depth = 0
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(frame)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = frame
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = draw(st.sampled_from(["drop", "rename", "retype", "base64", "deep"]))
        if op == "drop":
            del parent[last]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(RENAMES)] = parent.pop(last)
        elif op == "retype":
            parent[last] = draw(json_values)
        elif op == "base64":
            parent[last] = draw(BAD_BASE64)
        elif op == "deep":
            parent[last] = DEEP
            depth = draw(st.sampled_from([10, 500, 5_000, 200_000]))
    text = json.dumps(frame)
    if depth:
        nested = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if nested == "[" else "}"
        text = text.replace(json.dumps(DEEP), nested * depth + "1" + closer * depth, 1)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    encoding = draw(st.sampled_from(["str", "utf-8", "utf-16", "latin-1-ish"]))
    if encoding == "str":
        return text
    if encoding == "latin-1-ish":
        return text.encode("utf-8", "surrogatepass")[:-1] + b"\xff"
    return text.encode(encoding, "surrogatepass")


def check_parse(data: str | bytes) -> None:
    """The contract: a list of known events, or LiveProtocolError with a short clear message."""
    try:
        events = wire.parse_server_message(data)
    except wire.LiveProtocolError as exc:
        assert 0 < len(str(exc)) < 600
        return
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, EVENT_TYPES)


def check_session(script: list[tuple[str, Any]]) -> None:
    """A session fed frames and input in any order raises nothing but LiveProtocolError."""
    session = LiveSession(wire.SetupOptions(model="m"), replay_window_s=0.2, hands_free_tail_s=0.05)
    session.connect()
    now = 0.0
    for action, arg in script:
        now += 0.01
        if action == "frame":
            with contextlib.suppress(wire.LiveProtocolError):
                session.receive_data(arg, now)
        elif action == "drop":
            session.connection_lost()
            session.connect(session.resumption_handle)
        elif action == "press":
            if not session.user_activity_open:
                session.send_activity_start()
        elif action == "release":
            if session.user_activity_open:
                session.send_activity_end()
        elif action == "audio":
            session.send_audio(bytes([arg]) * 640)
        session.handover_due(now)
        for frame in session.data_to_send():
            assert len(json.loads(frame)) == 1
        for event in session.events_received():
            assert isinstance(event, (*EVENT_TYPES, ev.TurnLost))


session_scripts = st.lists(
    st.tuples(st.just("frame"), mutated_frames() | st.sampled_from([json.dumps(v) for v in VALID]))
    | st.tuples(st.sampled_from(["drop", "press", "release"]), st.none())
    | st.tuples(st.just("audio"), st.integers(0, 255)),
    max_size=30,
)

SLOW = settings(max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck))
CI_HEALTH = settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # only the stateless skip guard below
    ]
)


@pytest.fixture(autouse=True)
def _slow_only_when_selected(request: pytest.FixtureRequest) -> None:
    """The 10^5-example copies run only when asked for with `-m slow`."""
    if request.node.get_closest_marker("slow") and "slow" not in str(
        request.config.getoption("markexpr") or ""
    ):
        pytest.skip("10^5-example fuzz run: select it with -m slow")


def both(strategy: st.SearchStrategy[Any], body: Callable[[Any], None]) -> tuple[Any, Any]:
    """The same property twice: at the profile's budget, and marked slow at 10^5 examples."""
    fast = CI_HEALTH(given(strategy)(body))
    slow = pytest.mark.slow(SLOW(given(strategy)(body)))
    return fast, slow


def _bytes(data: bytes) -> None:
    """Arbitrary bytes (mostly not JSON) never raise anything but LiveProtocolError."""
    check_parse(data)


def _json(value: Any) -> None:
    """Any JSON value, with the parser's own key names mixed in, parses or fails cleanly."""
    check_parse(json.dumps(value))


def _mutated(data: str | bytes) -> None:
    """Valid frames with dropped, renamed, retyped, broken-base64 or deeply nested fields."""
    check_parse(data)


def _session(script: list[tuple[str, Any]]) -> None:
    """LiveSession.receive_data with arbitrary frames interleaved with input and drops."""
    check_session(script)


test_arbitrary_bytes, test_arbitrary_bytes_slow = both(st.binary(max_size=300), _bytes)
test_arbitrary_json, test_arbitrary_json_slow = both(json_values | keyed_values, _json)
test_mutated_frames, test_mutated_frames_slow = both(mutated_frames(), _mutated)
test_session_receive_data, test_session_receive_data_slow = both(session_scripts, _session)


def _strict_reference(text: str) -> bytes | None:
    """What the strict decoder alone says (URL-safe translated, padding added), None if invalid."""
    text = text.translate(str.maketrans("-_", "+/"))
    text += "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:
        return None


def _base64(text: str) -> None:
    """The lenient fast path of the audio decoder accepts exactly what strict decoding accepts."""
    frame = json.dumps(
        {
            "serverContent": {
                "modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm", "data": text}}]}
            }
        }
    )
    expected = _strict_reference(text)
    try:
        events = wire.parse_server_message(frame)
    except wire.LiveProtocolError:
        assert expected is None or len(expected) % 2 == 1
        return
    assert events == [ev.AudioChunk(expected, 24000)]


base64_texts = st.text(alphabet="AQgw/+-_=*. \n", max_size=16) | st.binary(max_size=12).map(
    lambda b: base64.b64encode(b).decode()
)
test_base64_fast_path, test_base64_fast_path_slow = both(base64_texts, _base64)


def test_valid_frames_parse() -> None:
    """The unmutated seed frames are all valid (so mutations start from real messages)."""
    for frame in VALID:
        assert wire.parse_server_message(json.dumps(frame))


def _leaves_replaced(value: Any, new: Any) -> list[Any]:
    """Copies of `value`, each with one leaf (a scalar anywhere inside) replaced by `new`."""
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            for changed in _leaves_replaced(item, new):
                out.append({**value, key: changed})
        return out
    if isinstance(value, list):
        out = []
        for index, item in enumerate(value):
            for changed in _leaves_replaced(item, new):
                out.append([*value[:index], changed, *value[index + 1 :]])
        return out
    return [new]


@pytest.mark.parametrize(
    "huge",
    [10**400, -(10**400), 1e308, 2**63, "9" * 400],
    ids=["1e400", "-1e400", "1e308", "2**63", "400-digit string"],
)
def test_huge_numbers_in_any_field_are_protocol_errors_at_worst(huge: object) -> None:
    """A 400-digit integer (or a float near the limit) in any field of any valid message parses
    or raises LiveProtocolError: never OverflowError (a goAway timeLeft of 10**400 once stopped
    the daemon)."""
    for message in VALID:
        for changed in _leaves_replaced(message, huge):
            with contextlib.suppress(wire.LiveProtocolError):
                wire.parse_server_message(json.dumps(changed))
