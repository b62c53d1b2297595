"""The tool interface, the declarations sent in setup, and the runner for the model's calls.

A tool call must never take the daemon down: whatever a tool does (bad arguments, an exception, a
slow command) the model gets a `response` object, `{"result": ...}` or `{"error": "..."}`, as the
Live API's toolResponse.functionResponses[].response. Cancellation (toolCallCancellation) is the
one outcome without a response: the server has already abandoned those ids.

Each tool says how the model treats its calls (`Behavior`): a blocking one makes the model wait
for the result; during a non-blocking one the model keeps talking, and the result goes back with
a `FunctionResponse.scheduling` (INTERRUPT, WHEN_IDLE or SILENT). A model that runs calls only
synchronously gets every tool as blocking (`ToolRunner(non_blocking=False)`).

Nor may the server's messages take it down: a call whose id is missing or already running (a
repeated id in one toolCall, or across two) is logged and ignored, a call of an unknown function
is answered with an error, and a cancellation of an id that is not running is a no-op. Those logs
are rate-limited, since a server can repeat the same contradiction in every message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pilive.live.wire import FUNCTION_NAME_PATTERN, SCHEDULINGS, FunctionResponse
from pilive.ratelimit import LogLimiter
from pilive.tools.schema import ArgumentError, validate

log = logging.getLogger(__name__)

_NAME = re.compile(FUNCTION_NAME_PATTERN)

ToolResponse = dict[str, Any]


def check_tool_name(name: str) -> None:
    """Refuse names the Live API would reject in setup (a 1007 on every connect)."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ValueError(
            f"tool name {name!r} is not valid: start with a letter or underscore, then up to 63 "
            "letters, digits, '_', '.', ':' or '-'"
        )


@dataclass(frozen=True, slots=True)
class Behavior:
    """`FunctionDeclaration.behavior` of a tool, and for a non-blocking one the
    `FunctionResponse.scheduling` its results carry: INTERRUPT (the model stops what it is saying
    and speaks about the result), WHEN_IDLE (it speaks once it has finished) or SILENT (it takes
    the result in without a word). Scheduling means nothing to a blocking function."""

    blocking: bool = True
    scheduling: str | None = None

    def __post_init__(self) -> None:
        if self.blocking and self.scheduling is not None:
            raise ValueError(f"a blocking tool has no scheduling, got {self.scheduling!r}")
        if not self.blocking and self.scheduling not in SCHEDULINGS:
            raise ValueError(
                f"scheduling {self.scheduling!r} is not one of {', '.join(SCHEDULINGS)}"
            )

    @property
    def wire_name(self) -> str:
        """BLOCKING or NON_BLOCKING, as `FunctionDeclaration.behavior` spells it."""
        return "BLOCKING" if self.blocking else "NON_BLOCKING"

    def scheduling_for(self, response: ToolResponse) -> str | None:
        """The scheduling of one result: None for a blocking tool; a failed call is never silent
        (the model should be able to tell the user that it did not work)."""
        if self.scheduling == "SILENT" and "error" in response:
            return "WHEN_IDLE"
        return self.scheduling


BLOCKING = Behavior()


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    """One entry of setup.tools[].functionDeclarations: name, description, parameters, behavior.

    `parameters` is the checked JSON schema (lower-case types), or None for a tool without
    arguments: the Gemini API rejects an OBJECT schema with no properties, so omit the field then.
    The wire layer can send it as `parametersJsonSchema` as is, or as the OpenAPI-style
    `parameters` via `parameters_openapi()`. `behavior` is the one the model will be told, after
    any fallback to blocking.
    """

    name: str
    description: str
    parameters: Mapping[str, Any] | None
    behavior: Behavior = BLOCKING

    def parameters_openapi(self) -> dict[str, Any] | None:
        """The schema with Gemini's upper-case type names ("OBJECT", "STRING", ...)."""
        return None if self.parameters is None else _upper_types(self.parameters)


def _upper_types(schema: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["type"] = str(schema["type"]).upper()
    if "properties" in schema:
        out["properties"] = {k: _upper_types(v) for k, v in schema["properties"].items()}
    return out


class Tool(Protocol):
    """A function the model may call. `parameters` is a checked schema (see tools.schema)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any]: ...

    @property
    def behavior(self) -> Behavior:
        """Whether the model waits for the result, and how a non-blocking result is used."""
        ...

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        """Run with arguments already validated against `parameters`; return the response."""
        ...


def declaration_of(tool: Tool, behavior: Behavior | None = None) -> ToolDeclaration:
    """The setup declaration for `tool` (with `behavior` in place of the tool's own, if given)."""
    has_args = bool(tool.parameters.get("properties"))
    return ToolDeclaration(
        tool.name,
        tool.description,
        tool.parameters if has_args else None,
        tool.behavior if behavior is None else behavior,
    )


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A finished call: what goes into toolResponse.functionResponses[] (id, name, response,
    and for a non-blocking function its scheduling)."""

    call_id: str
    name: str
    response: ToolResponse
    scheduling: str | None = None

    def function_response(self) -> FunctionResponse:
        """The toolResponse.functionResponses[] entry that answers the call."""
        return FunctionResponse(self.call_id, self.name, self.response, self.scheduling)


class ToolRunner:
    """Runs the model's function calls as tasks, reports each result, cancels on request.

    on_result is called on the loop with every finished call (never for a cancelled one); the
    connection layer turns it into a toolResponse frame. `non_blocking=False` (a model that
    runs function calls only synchronously) declares and answers every tool as blocking.
    """

    def __init__(
        self,
        tools: Sequence[Tool],
        on_result: Callable[[ToolResult], None],
        *,
        non_blocking: bool = True,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._behaviors: dict[str, Behavior] = {}
        for tool in tools:
            check_tool_name(tool.name)
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool
            self._behaviors[tool.name] = tool.behavior if non_blocking else BLOCKING
        self._on_result = on_result
        self._running: dict[str, asyncio.Task[None]] = {}
        self._log_limiter = LogLimiter()
        self.ignored_calls = 0  # calls refused as contradictory (no id, id already running)

    def declarations(self) -> list[ToolDeclaration]:
        """Declarations of every enabled tool, for setup.tools[].functionDeclarations."""
        return [declaration_of(tool, self._behaviors[tool.name]) for tool in self._tools.values()]

    @property
    def non_blocking_names(self) -> frozenset[str]:
        """Functions the model keeps talking through (declared NON_BLOCKING)."""
        return frozenset(name for name, b in self._behaviors.items() if not b.blocking)

    @property
    def running(self) -> frozenset[str]:
        """Ids of the calls still in progress."""
        return frozenset(self._running)

    async def call(self, name: str, args: Mapping[str, Any] | None) -> ToolResponse:
        """Validate and run one call; every failure becomes {"error": ...}, except cancellation."""
        tool = self._tools.get(name)
        if tool is None:
            self._warn("unknown", "the model called %r, which is not declared", name)
            return {"error": f"unknown function {name!r}; available: {sorted(self._tools)}"}
        try:
            checked = validate(tool.parameters, {} if args is None else args)
        except ArgumentError as exc:
            return {"error": f"invalid arguments for {name}: {exc}"}
        try:
            return await tool.call(checked)
        except Exception as exc:
            log.exception("tool %s failed", name)
            return {"error": f"{name} failed: {type(exc).__name__}: {exc}"}

    def start(
        self, call_id: str, name: str, args: Mapping[str, Any] | None
    ) -> asyncio.Task[None] | None:
        """Start toolCall.functionCalls[] entry (id, name, args) in the background.

        None when the call is ignored: without an id it cannot be answered (a toolResponse must
        name the id), and an id already running is the server repeating itself (the running
        call's response answers it). Never raises for what the server sent.
        """
        if not isinstance(call_id, str) or not call_id:
            self.ignored_calls += 1
            self._warn("no-id", "ignored a call of %r without an id: it cannot be answered", name)
            return None
        if call_id in self._running:
            self.ignored_calls += 1
            self._warn(
                "repeated-id",
                "ignored a repeated function call id %r (%s): that call is still running",
                call_id,
                name,
            )
            return None
        task = asyncio.create_task(self._run(call_id, name, args), name=f"tool {name} {call_id}")
        self._running[call_id] = task
        task.add_done_callback(lambda t: self._finished(call_id, t))
        return task

    def _finished(self, call_id: str, task: asyncio.Task[None]) -> None:
        self._running.pop(call_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("reporting the result of call %s failed", call_id, exc_info=exc)

    async def _run(self, call_id: str, name: str, args: Mapping[str, Any] | None) -> None:
        response = await self.call(name, args)
        behavior = self._behaviors.get(name, BLOCKING)
        self._on_result(ToolResult(call_id, name, response, behavior.scheduling_for(response)))

    def cancel(self, call_ids: Iterable[str]) -> list[str]:
        """toolCallCancellation.ids: cancel those still running; returns the ones cancelled."""
        cancelled = []
        for call_id in call_ids:
            task = self._running.get(call_id)
            if task is None:
                log.debug("cancellation of call %r, which is not running: nothing to do", call_id)
            elif task.cancel():
                cancelled.append(call_id)
        return cancelled

    def _warn(self, kind: str, message: str, *args: object) -> None:
        if self._log_limiter.allow(kind):
            log.warning(message + "%s", *args, self._log_limiter.suffix(kind))

    async def aclose(self) -> None:
        """Cancel every running call and wait for them (their processes are killed)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
