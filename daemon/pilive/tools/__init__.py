"""Functions the model may call: built-ins and programs declared in config.

Build the enabled tools, give them to a `base.ToolRunner`, send `runner.declarations()` in setup,
`runner.start(id, name, args)` for each toolCall.functionCalls entry and `runner.cancel(ids)` for
toolCallCancellation; each finished call comes back as a `base.ToolResult` for toolResponse.

Import the submodules directly; this package module imports nothing, so the configuration loader
can use the pure `schema` checker without pulling in asyncio.
"""
