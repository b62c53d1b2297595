"""The local control socket: `pilive ctl`, scripts and cron jobs talk to the running daemon.

`protocol` is pure (requests and replies as JSON lines); `server` is the asyncio Unix socket the
daemon listens on; `pilive.ctl` is the command-line client. Nothing here opens a network port.
"""
