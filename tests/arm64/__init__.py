"""The test suite on the Pi's own architecture: a Debian bookworm arm64 root run under qemu-user.

`python -m tests.arm64` (or `make test-arm64`) builds the root once, installs pilive there the way
`systemd/install.sh` does on a Pi, and runs the tests and `pilive demo` inside it. See __main__.
"""
