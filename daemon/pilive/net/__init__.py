"""The asyncio + websockets layer around the sans-I/O Live API core."""
