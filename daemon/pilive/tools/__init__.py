"""Functions the model may call: built-ins and programs declared in config.

Build the enabled tools, give them to a ToolRunner, send `runner.declarations()` in setup,
`runner.start(id, name, args)` for each toolCall.functionCalls entry and `runner.cancel(ids)` for
toolCallCancellation; each finished call comes back as a ToolResult for toolResponse.
"""

from pilive.tools.base import (
    Tool,
    ToolDeclaration,
    ToolResponse,
    ToolResult,
    ToolRunner,
    check_tool_name,
    declaration_of,
)
from pilive.tools.builtin import (
    BUILTIN_TOOL_NAMES,
    DeviceStatusTool,
    NewConversationTool,
    SetVolumeTool,
)
from pilive.tools.command import CommandTool
from pilive.tools.schema import ArgumentError, SchemaError, check_schema, validate

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "ArgumentError",
    "CommandTool",
    "DeviceStatusTool",
    "NewConversationTool",
    "SchemaError",
    "SetVolumeTool",
    "Tool",
    "ToolDeclaration",
    "ToolResponse",
    "ToolResult",
    "ToolRunner",
    "check_schema",
    "check_tool_name",
    "declaration_of",
    "validate",
]
