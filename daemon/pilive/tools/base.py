"""The tool interface, the declarations sent in setup, and the runner for the model's calls.

A tool call must never take the daemon down: whatever a tool does (bad arguments, an exception, a
slow command) the model gets a `response` object, `{"result": ...}` or `{"error": "..."}`, as the
Live API's toolResponse.functionResponses[].response. Cancellation (toolCallCancellation) is the
one outcome without a response: the server has already abandoned those ids.

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

from pilive.live.wire import FUNCTION_NAME_PATTERN
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
class ToolDeclaration:
    """One entry of setup.tools[].functionDeclarations: name, description, parameters.

    `parameters` is the checked JSON schema (lower-case types), or None for a tool without
    arguments: the Gemini API rejects an OBJECT schema with no properties, so omit the field then.
    The wire layer can send it as `parametersJsonSchema` as is, or as the OpenAPI-style
    `parameters` via `parameters_openapi()`.
    """

    name: str
    description: str
    parameters: Mapping[str, Any] | None

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

    async def call(self, args: Mapping[str, Any]) -> ToolResponse:
        """Run with arguments already validated against `parameters`; return the response."""
        ...


def declaration_of(tool: Tool) -> ToolDeclaration:
    """The setup declaration for `tool`."""
    has_args = bool(tool.parameters.get("properties"))
    return ToolDeclaration(tool.name, tool.description, tool.parameters if has_args else None)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A finished call: what goes into toolResponse.functionResponses[] (id, name, response)."""

    call_id: str
    name: str
    response: ToolResponse


class ToolRunner:
    """Runs the model's function calls as tasks, reports each result, cancels on request.

    on_result is called on the loop with every finished call (never for a cancelled one); the
    connection layer turns it into a toolResponse frame.
    """

    def __init__(self, tools: Sequence[Tool], on_result: Callable[[ToolResult], None]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            check_tool_name(tool.name)
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool
        self._on_result = on_result
        self._running: dict[str, asyncio.Task[None]] = {}
        self._log_limiter = LogLimiter()
        self.ignored_calls = 0  # calls refused as contradictory (no id, id already running)

    def declarations(self) -> list[ToolDeclaration]:
        """Declarations of every enabled tool, for setup.tools[].functionDeclarations."""
        return [declaration_of(tool) for tool in self._tools.values()]

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
        self._on_result(ToolResult(call_id, name, response))

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
