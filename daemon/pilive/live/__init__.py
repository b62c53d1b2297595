"""Sans-I/O Live API core: wire format, session state and retry policy.

No asyncio, sockets or clocks here: callers pass `now` and move the bytes.
"""
