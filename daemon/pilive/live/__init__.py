"""Sans-I/O Live API core: wire format, session state, retry policy. No asyncio, sockets or clocks."""
