"""goAway handover on loopback: how long no session is usable, and whether any input is lost.

Each round holds the button and streams 20 ms mic chunks; the emulator sends goAway part-way, so
the handover happens while the user is talking (the hardest case: the activity must be replayed
on the new connection). Reported per handover: the gap from closing the old socket to
`setupComplete` on the new one, and input bytes the model did not take in.

Run: python -m tests.bench.bench_handover [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from typing import Any

from pilive.config import Secret
from pilive.live import wire
from pilive.live.events import SessionEvent, TurnComplete
from pilive.live.session import LiveSession
from pilive.net.connection import LinkOptions, LiveLink
from tests.support.emulator_rig import MODEL, emulator_options, running, tone

CHUNK_BYTES = 640  # 20 ms at 16 kHz


async def _measure(rounds: int) -> dict[str, Any]:
    gaps_ms: list[float] = []
    lost_bytes: list[int] = []
    async with running(emulator_options()) as emu:
        events: list[SessionEvent] = []
        session = LiveSession(wire.SetupOptions(model=MODEL), handover_margin_s=1.0)
        link = LiveLink(
            session,
            Secret(emu.api_key, "bench"),
            LinkOptions(endpoint=emu.url, backoff_initial_s=0.05, backoff_max_s=0.5),
            on_event=events.append,
        )
        task = asyncio.create_task(link.run())
        try:
            while not link.connected:
                await asyncio.sleep(0.005)
            for n in range(1, rounds + 1):
                sent = tone(0.8, freq_hz=200 + 10 * n)
                link.send_activity_start()
                for i in range(0, len(sent), CHUNK_BYTES):
                    if i == 10 * CHUNK_BYTES:
                        emu.faults.go_away(1.1)  # handover due 0.1 s later, mid-utterance
                    link.send_audio(sent[i : i + CHUNK_BYTES])
                    await asyncio.sleep(0.02)  # the mic's real-time pace
                link.send_activity_end()
                while sum(isinstance(e, TurnComplete) for e in events) < n:
                    await asyncio.sleep(0.005)
                got = bytes(emu.recording.session().turns[-1].audio)
                lost_bytes.append(len(sent) - len(got) if sent.startswith(got) else len(sent))
            gaps_ms = [g * 1000 for g in link.counters.handover_gaps_s]
        finally:
            link.stop()
            await task
    return {
        "rounds": rounds,
        "handovers": len(gaps_ms),
        "gap_ms_min": min(gaps_ms),
        "gap_ms_median": statistics.median(gaps_ms),
        "gap_ms_max": max(gaps_ms),
        "input_bytes_lost": sum(lost_bytes),
        "sessions_on_server": emu.recording.counters["sessions"],
    }


def main(rounds: int = 20) -> dict[str, Any]:
    figures = asyncio.run(_measure(rounds))
    print(f"goAway handover on loopback, {figures['handovers']} handovers while talking")
    print(f"{'':28}{'min':>9}{'median':>9}{'max':>9}   goal")
    print(
        f"{'no usable session (ms)':28}{figures['gap_ms_min']:9.1f}"
        f"{figures['gap_ms_median']:9.1f}{figures['gap_ms_max']:9.1f}   <= 250"
    )
    print(f"{'input bytes lost':28}{figures['input_bytes_lost']:>27}   0")
    print(f"{'server-side sessions':28}{figures['sessions_on_server']:>27}   1")
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
