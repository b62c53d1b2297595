"""The household's kept JSON files (settings, timers): saves asked for faster than the disk takes
them are folded into the newest, so memory and worker threads stay bounded whatever a control
client or MQTT publisher sends, and the newest data is what ends up on disk."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pilive.kept import KeptJson
from pilive.state import LoadOutcome


def _kept(tmp_path: Path) -> KeptJson:
    return KeptJson(tmp_path, "settings.json", kind="settings file", loss="lost", kept="kept")


async def test_a_flood_of_saves_stays_bounded_and_the_newest_wins(tmp_path: Path) -> None:
    """Ten thousand saves in one loop iteration (a script setting the volume in a loop) leave
    at most one writer task behind, not one task and one queued thread job each; after flush
    the file holds the last value."""
    kept = _kept(tmp_path)
    before = len(asyncio.all_tasks())
    for percent in range(10_000):
        kept.save_soon({"volume_percent": percent % 101, "n": percent})
    assert len(asyncio.all_tasks()) - before <= 1
    await kept.flush()
    assert json.loads(kept.path.read_text())["n"] == 9_999
    assert kept.load().outcome is LoadOutcome.LOADED


async def test_saves_during_a_write_are_written_after_it_and_each_is_told(
    tmp_path: Path,
) -> None:
    """A save asked for while another is being written is not lost: it follows, and every
    caller's on_done runs once its data (or newer) is on disk."""
    kept = _kept(tmp_path)
    done: list[int] = []
    kept.save_soon({"n": 1}, lambda: done.append(1))
    await asyncio.sleep(0)  # the first write is under way on its thread
    kept.save_soon({"n": 2}, lambda: done.append(2))
    kept.save_soon({"n": 3}, lambda: done.append(3))
    await kept.flush()
    assert json.loads(kept.path.read_text())["n"] == 3
    assert sorted(done) == [1, 2, 3]


def test_a_damaged_file_is_corrupt_and_named_by_its_kind(tmp_path: Path) -> None:
    """Kept files read through the same ladder as the handle and the token count: text that is
    not JSON, a NaN (which Python's json would accept), a list or a wrong version is CORRUPT
    with the file and its kind named, and a missing file is MISSING."""
    kept = _kept(tmp_path)
    assert kept.load().outcome is LoadOutcome.MISSING
    for raw, why in (
        (b"\xff{", "not a settings file (not JSON)"),
        (b'{"version": 1, "volume_percent": NaN}', "not a settings file (not JSON)"),
        (b"[1]", "not a settings file (no version 1 object)"),
        (b'{"version": 2}', "not a settings file (no version 1 object)"),
    ):
        kept.path.write_bytes(raw)
        loaded = kept.load()
        assert loaded.outcome is LoadOutcome.CORRUPT
        assert loaded.detail == f"{kept.path}: {why}"
        assert loaded.data == {}
