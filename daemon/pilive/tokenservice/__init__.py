"""`pilive token-service`: mints ephemeral Live API tokens for a fleet of pilive devices.

It runs on the owner's server (not on a device), holds the API key, authenticates each device
by its own credential (stored hashed, revocable), rate-limits it, asks the real `auth_tokens`
API for a single-use, short-lived token locked to the owner's model and chosen setup fields,
and writes an audit line per token (never the token). Built on aiohttp: a well-kept asyncio
HTTP server and client, one library for both sides of the service, packaged in Debian
(python3-aiohttp), and not in any device's hot path.
"""
