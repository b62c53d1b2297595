"""What the tests stand on, not tests themselves: rigs (the emulator, a daemon process, the
PulseAudio null sinks, a systemd container, a link harness, a scripted camera), the fault proxy
and the ring buffer's reference model."""
