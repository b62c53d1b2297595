"""The frames each `[[tools.command]] behavior` and `scheduling` value produces, held to the
google-genai SDK's types: FunctionDeclaration.behavior (Behavior) in setup, and
FunctionResponse.scheduling (FunctionResponseScheduling) in toolResponse, read back as given."""

from __future__ import annotations

import json
from typing import Any

import pytest

types = pytest.importorskip("google.genai.types")

from pilive import wiring  # noqa: E402
from pilive.live import wire  # noqa: E402
from pilive.tools.base import ToolResult, ToolRunner  # noqa: E402
from tests.conformance.test_client_frames import validate_client_frame  # noqa: E402
from tests.unit.test_nonblocking_tools import (  # noqa: E402
    LIVE_2_5,
    LIVE_3_1,
    LIVE_3_8,
    command_config,
)


@pytest.mark.parametrize("model", [LIVE_3_8, LIVE_2_5, LIVE_3_1])
@pytest.mark.parametrize("behavior", ["blocking", "non-blocking"])
def test_setup_with_each_behavior_validates(model: str, behavior: str) -> None:
    """The setup frame of a config with `behavior = ...` validates; the SDK reads back the
    behavior pilive meant (or none where it is left out)."""
    config = command_config(behavior, model=model)
    runner = ToolRunner(
        wiring.tools(
            config,
            get_volume_percent=lambda: 50,
            set_volume_percent=lambda percent: None,
            start_new_conversation=lambda: None,
        ),
        lambda result: None,
        non_blocking=wiring.non_blocking_tools(config),
    )
    frame = wire.build_setup(wiring.setup_options(config, runner.declarations()))
    sent = json.loads(frame)["setup"]["tools"][0]["functionDeclarations"][0].get("behavior")
    setup = validate_client_frame(frame).setup
    (declaration,) = [d for t in setup.tools or [] for d in t.function_declarations or []]
    read = declaration.behavior
    assert (read.value if read is not None else None) == sent
    assert declaration.name == "lookup"


@pytest.mark.parametrize(
    ("behavior", "scheduling"),
    [
        ("blocking", "when-idle"),
        ("non-blocking", "interrupt"),
        ("non-blocking", "when-idle"),
        ("non-blocking", "silent"),
    ],
)
def test_tool_response_with_each_scheduling_validates(behavior: str, scheduling: str) -> None:
    """The toolResponse a result of such a tool goes back in validates; the SDK reads the
    scheduling as its FunctionResponseScheduling member (none for a blocking tool)."""
    tool = wiring.tool_behavior(behavior, scheduling)
    response: dict[str, Any] = {"result": "ok"}
    result = ToolResult("fc-1", "lookup", response, tool.scheduling_for(response))
    message = validate_client_frame(wire.build_tool_response([result.function_response()]))
    (item,) = message.tool_response.function_responses
    assert (item.id, item.name, item.response) == ("fc-1", "lookup", response)
    if behavior == "blocking":
        assert item.scheduling is None
    else:
        expected = types.FunctionResponseScheduling(scheduling.upper().replace("-", "_"))
        assert item.scheduling is expected
